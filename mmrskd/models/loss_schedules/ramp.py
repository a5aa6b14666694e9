import math

from mmrskd.models.loss_schedules.base import LossWeightSchedule
from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class RampSchedule(LossWeightSchedule):
    """Go from ``start_value`` to ``end_value`` between two iterations.

    ``w(t) = start + (end - start) * f((t - start_iter) / (end_iter -
    start_iter))`` with ``f(p) = p`` (linear) or ``(1 - cos(pi p)) / 2``
    (cosine), clamped to ``start_value`` before and ``end_value`` after.

    Args:
        start_iter (int): first iteration of the ramp.
        end_iter (int | None): last iteration; None means the run's end.
        start_value (float): multiplier up to ``start_iter``.
        end_value (float): multiplier from ``end_iter`` on.
        curve (str): ``'linear'`` or ``'cosine'``.
    """

    CURVES = ('linear', 'cosine')

    def __init__(self, start_iter=0, end_iter=None, start_value=0.0,
                 end_value=1.0, curve='linear'):
        super().__init__()
        if curve not in self.CURVES:
            raise MMRSKDError(f'{type(self).__name__}.curve must be one of '
                              f'{self.CURVES}, got {curve!r}')
        if end_iter is not None and end_iter <= start_iter:
            raise MMRSKDError(f'{type(self).__name__}: end_iter ({end_iter}) '
                              f'must be after start_iter ({start_iter})')
        self.start_iter = start_iter
        self.end_iter = end_iter
        self.start_value = float(start_value)
        self.end_value = float(end_value)
        self.curve = curve

    def forward(self, cur_iter, max_iters):
        end_iter = max_iters if self.end_iter is None else self.end_iter
        span = max(end_iter - self.start_iter, 1)
        progress = min(max((cur_iter - self.start_iter) / span, 0.0), 1.0)
        if self.curve == 'cosine':
            progress = (1.0 - math.cos(math.pi * progress)) / 2.0
        return self.start_value + (self.end_value -
                                   self.start_value) * progress


@TASK_UTILS.register_module()
class WarmupSchedule(RampSchedule):
    """Ramp from 0 to 1 over the first ``warmup_iters`` iterations.

    Args:
        warmup_iters (int): length of the warm-up.
        curve (str): ``'linear'`` or ``'cosine'``.
    """

    def __init__(self, warmup_iters, curve='linear'):
        super().__init__(start_iter=0, end_iter=warmup_iters, start_value=0.0,
                         end_value=1.0, curve=curve)
