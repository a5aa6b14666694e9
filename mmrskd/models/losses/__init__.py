from mmrskd.models.losses.cwd_loss import CWDLoss
from mmrskd.models.losses.fgd_loss import FGDLoss
from mmrskd.models.losses.fitnet_loss import FitNetLoss
from mmrskd.models.losses.jol_loss import JOLLoss
from mmrskd.models.losses.kd_quality_focal_loss import KDQualityFocalLoss
from mmrskd.models.losses.ld_loss import LDLoss
from mmrskd.models.losses.logit_kd_loss import LogitKDLoss
from mmrskd.models.losses.pkd_loss import PKDLoss
from mmrskd.models.losses.rotated_iou_loss import RotatedIoULoss

__all__ = [
    'CWDLoss', 'FGDLoss', 'FitNetLoss', 'JOLLoss', 'KDQualityFocalLoss',
    'LDLoss', 'LogitKDLoss', 'PKDLoss', 'RotatedIoULoss'
]
