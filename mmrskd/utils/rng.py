"""Random-state helpers."""
import random
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_rng_state():
    """Leave Python's, NumPy's and torch's global RNGs as they were on entry.

    Code inside the block draws random numbers as usual; what follows the
    block draws exactly what it would have drawn had the block not run.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
