from mmrskd.models.task_modules.batch_task_aligned_assigner import \
    BatchTaskAlignedAssigner
from mmrskd.models.task_modules.gghl_assigner import GGHLAssigner
from mmrskd.models.task_modules.vlr_assigner import VLRAssigner

__all__ = ['BatchTaskAlignedAssigner', 'GGHLAssigner', 'VLRAssigner']
