from mmrskd.models.loss_schedules.base import LossWeightSchedule
from mmrskd.registry import TASK_UTILS


@TASK_UTILS.register_module()
class ConstantSchedule(LossWeightSchedule):
    """A fixed multiplier.

    Args:
        value (float): the multiplier. Defaults to 1.0.
    """

    def __init__(self, value=1.0):
        super().__init__()
        self.value = float(value)

    def forward(self, cur_iter, max_iters):
        return self.value
