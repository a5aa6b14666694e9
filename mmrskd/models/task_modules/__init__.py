from mmrskd.models.task_modules.atss_candidates import ATSSCandidates
from mmrskd.models.task_modules.batch_task_aligned_assigner import \
    BatchTaskAlignedAssigner
from mmrskd.models.task_modules.candidate_rotated_atss_assigner import \
    CandidateRotatedATSSAssigner
from mmrskd.models.task_modules.gghl_assigner import GGHLAssigner
from mmrskd.models.task_modules.tasd_region_assigner import \
    TASDRegionAssigner
from mmrskd.models.task_modules.vlr_assigner import VLRAssigner

__all__ = [
    'ATSSCandidates', 'BatchTaskAlignedAssigner',
    'CandidateRotatedATSSAssigner', 'GGHLAssigner', 'TASDRegionAssigner',
    'VLRAssigner'
]
