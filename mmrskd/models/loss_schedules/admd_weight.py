import torch
from mmengine.dist import all_reduce

from mmrskd.models.loss_schedules.base import LossWeightSchedule
from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class ADMDAdaptiveWeight(LossWeightSchedule):
    r"""ADMD's weight-increasing module, adaptive form: keep a distillation
    loss at its early magnitude as the teacher–student gap closes.

    With :math:`L_t` the unweighted loss of step :math:`t`:

    .. math::
        \bar L_0 = \frac{1}{N_0} \sum_{t < N_0} L_t, \qquad
        E_t = m E_{t-1} + (1 - m) L_t \;(E_0 = L_0), \qquad
        w_t = \mathrm{clip}(\bar L_0 / E_{t-1},\, 1,\, w_{max})

    and :math:`w_t = 1` during the first :math:`N_0` steps. The weight never
    drops below 1 and only rises when the loss has fallen below its initial
    level, so the distillation term keeps contributing to the student's
    gradient late in training (the "loss vanishing" the ADMD paper reports
    for discrepancy-masked distillation).

    The state is kept in buffers (saved in checkpoints, restored on
    ``--resume``); the observed losses are averaged over all ranks first, so
    every rank uses the same weight. Non-finite losses are not recorded.

    Args:
        warmup_iters (int): :math:`N_0`, the steps that define the initial
            loss level. Defaults to 100.
        momentum (float): EMA momentum :math:`m` in [0, 1). Defaults to
            0.99.
        max_weight (float): :math:`w_{max} \geq 1`. Defaults to 10.
    """

    def __init__(self, warmup_iters=100, momentum=0.99, max_weight=10.0):
        super().__init__()
        name = type(self).__name__
        if int(warmup_iters) != warmup_iters or warmup_iters < 1:
            raise MMRSKDError(f'{name}: warmup_iters={warmup_iters!r} must '
                              'be a positive integer')
        if not 0 <= momentum < 1:
            raise MMRSKDError(f'{name}: momentum={momentum!r} must be in '
                              '[0, 1)')
        if not max_weight >= 1:
            raise MMRSKDError(f'{name}: max_weight={max_weight!r} must be '
                              '>= 1 (the weight only increases)')
        self.warmup_iters = int(warmup_iters)
        self.momentum = float(momentum)
        self.max_weight = float(max_weight)
        # fp64: the sums of many small losses must not lose precision
        self.register_buffer('num_updates',
                             torch.zeros((), dtype=torch.long))
        self.register_buffer('initial_loss_sum',
                             torch.zeros((), dtype=torch.float64))
        self.register_buffer('ema_loss', torch.zeros((), dtype=torch.float64))
        self.register_buffer('weight', torch.ones((), dtype=torch.float64))

    def forward(self, cur_iter, max_iters):
        """The multiplier of this step (progress arguments unused: the weight
        depends on the observed losses only)."""
        if self.num_updates < self.warmup_iters:
            weight = 1.0
        else:
            initial = self.initial_loss_sum / self.warmup_iters
            ratio = initial / self.ema_loss.clamp_min(
                torch.finfo(torch.float64).tiny)
            weight = float(ratio.clamp(1.0, self.max_weight))
        self.weight.fill_(weight)
        return weight

    def update(self, loss):
        """Record this step's scheduled loss (divided by the weight it was
        scaled with)."""
        loss = loss.detach().to(self.ema_loss) / self.weight
        all_reduce(loss, op='mean')
        if not torch.isfinite(loss):
            return
        if self.num_updates == 0:
            self.ema_loss.copy_(loss)
        else:
            self.ema_loss.mul_(self.momentum).add_((1 - self.momentum) * loss)
        if self.num_updates < self.warmup_iters:
            self.initial_loss_sum.add_(loss)
        self.num_updates.add_(1)
