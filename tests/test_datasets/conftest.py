"""Synthetic datasets shared by the dataset tests (written once per run)."""
import pytest

from mmrskd.datasets.synthetic import generate

SYNTHETIC_SIZES = {'dota': 128, 'dior': 128, 'hrsc': 160, 'nwpu': 128}


@pytest.fixture(scope='session')
def synthetic(tmp_path_factory):
    """``synthetic(fmt)`` -> ``(root, records)`` of a 16-image dataset."""
    cache = {}

    def make(fmt):
        if fmt not in cache:
            root = tmp_path_factory.mktemp(f'synthetic_{fmt}')
            records = generate(fmt, str(root), 16, seed=7,
                               img_size=SYNTHETIC_SIZES[fmt])
            cache[fmt] = (root, records)
        return cache[fmt]

    return make
