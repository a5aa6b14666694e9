import os

import pytest

# Two cores: one torch thread per test process keeps xdist workers from
# oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(scope='session', autouse=True)
def _register_all_modules():
    from mmrskd.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True)
def _fresh_visualizer():
    """mmengine keeps one global visualizer per name; a second in-process
    Runner would log into the first run's work dir. Each test starts
    without one, as a new tools/train.py process does."""
    yield
    from mmengine.visualization import Visualizer

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in (Visualizer, *subclasses(Visualizer)):
        cls._instance_dict.clear()
