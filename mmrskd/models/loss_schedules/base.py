import torch.nn as nn


class LossWeightSchedule(nn.Module):
    """Multiplier of a distillation loss as a function of training progress.

    The distiller calls ``schedule(cur_iter, max_iters)`` before each loss and
    multiplies the loss by the result, then calls :meth:`update` with the
    scheduled loss (detached), the hook point for adaptive schedules. State
    that adaptive schedules keep must be buffers, so it is saved with the
    checkpoint and ``--resume`` restores it.
    """

    def forward(self, cur_iter, max_iters):
        raise NotImplementedError

    def update(self, loss):
        """Observe this step's loss (a detached scalar tensor)."""
