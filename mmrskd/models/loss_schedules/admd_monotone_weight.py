from mmrskd.models.loss_schedules.ramp import RampSchedule
from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class ADMDMonotoneWeight(RampSchedule):
    r"""ADMD's weight-increasing module, monotone form:
    :math:`w_t = 1 + \gamma\, t / T` over the whole run (``T`` the run's
    ``max_iters``), the simpler alternative to
    :class:`~mmrskd.models.loss_schedules.ADMDAdaptiveWeight`. Stateless:
    resuming recomputes it from the iteration.

    Args:
        gamma (float): the increase at the end of training, ``w_T = 1 +
            gamma``. Defaults to 1.0.
    """

    def __init__(self, gamma=1.0):
        if not gamma >= 0:
            raise MMRSKDError(f'{type(self).__name__}: gamma={gamma!r} must '
                              'be >= 0 (the weight only increases)')
        super().__init__(start_iter=0, end_iter=None, start_value=1.0,
                         end_value=1.0 + gamma, curve='linear')
        self.gamma = float(gamma)
