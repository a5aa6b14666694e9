from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from mmrskd.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUBF16OptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: forward under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` needs a GPU; ``tools/train.py --amp``
    selects this wrapper when there is none. bfloat16 keeps fp32's exponent
    range, so no loss scaling is needed; losses that need fp32 cast inside.
    """

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield
