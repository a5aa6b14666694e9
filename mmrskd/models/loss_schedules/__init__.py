from mmrskd.models.loss_schedules.admd_monotone_weight import \
    ADMDMonotoneWeight
from mmrskd.models.loss_schedules.admd_weight import ADMDAdaptiveWeight
from mmrskd.models.loss_schedules.base import LossWeightSchedule
from mmrskd.models.loss_schedules.constant import ConstantSchedule
from mmrskd.models.loss_schedules.ramp import RampSchedule, WarmupSchedule
from mmrskd.models.loss_schedules.stop_after import StopAfterSchedule

__all__ = [
    'ADMDAdaptiveWeight', 'ADMDMonotoneWeight',
    'LossWeightSchedule', 'ConstantSchedule', 'RampSchedule', 'WarmupSchedule',
    'StopAfterSchedule'
]
