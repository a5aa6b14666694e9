import os

import pytest

# Two cores: one torch thread per test process keeps xdist workers from
# oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(scope='session', autouse=True)
def _register_all_modules():
    from mmrskd.utils import register_all_modules
    register_all_modules(init_default_scope=True)
