"""Benchmark scripts are not a package: tests load them by path."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_benchmark(name):
    """The module ``benchmarks/<name>.py``."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'benchmarks', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def kd_gain():
    return load_benchmark('kd_gain')


@pytest.fixture(scope='session')
def peer_kd():
    return load_benchmark('peer_kd')


@pytest.fixture(scope='session')
def kd_overhead():
    return load_benchmark('kd_overhead')


@pytest.fixture(scope='session')
def kd_profile():
    return load_benchmark('kd_profile')
