from mmrskd.models.loss_schedules.base import LossWeightSchedule
from mmrskd.registry import TASK_UTILS


@TASK_UTILS.register_module()
class StopAfterSchedule(LossWeightSchedule):
    """Distil at full weight, then switch the loss off.

    Args:
        stop_iter (int): the first iteration with weight 0.
    """

    def __init__(self, stop_iter):
        super().__init__()
        self.stop_iter = stop_iter

    def forward(self, cur_iter, max_iters):
        return 1.0 if cur_iter < self.stop_iter else 0.0
