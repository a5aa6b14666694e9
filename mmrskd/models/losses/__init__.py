from mmrskd.models.losses.admd_loss import ADMDLoss
from mmrskd.models.losses.csakd_attention_alignment_loss import \
    CSAKDAttentionAlignmentLoss
from mmrskd.models.losses.csakd_cross_supervision_loss import \
    CSAKDCrossSupervisionLoss
from mmrskd.models.losses.cwd_loss import CWDLoss
from mmrskd.models.losses.dked_feature_correlation_loss import \
    DKEDFeatureCorrelationLoss
from mmrskd.models.losses.dked_feature_response_loss import \
    DKEDFeatureResponseLoss
from mmrskd.models.losses.dked_prediction_loss import DKEDPredictionLoss
from mmrskd.models.losses.fgd_loss import FGDLoss
from mmrskd.models.losses.fitnet_loss import FitNetLoss
from mmrskd.models.losses.jol_loss import JOLLoss
from mmrskd.models.losses.kd_quality_focal_loss import KDQualityFocalLoss
from mmrskd.models.losses.ld_loss import LDLoss
from mmrskd.models.losses.logit_kd_loss import LogitKDLoss
from mmrskd.models.losses.ltd_attention_loss import LTDAttentionLoss
from mmrskd.models.losses.ltd_ccd_loss import LTDCCDLoss
from mmrskd.models.losses.ltd_tasd_loss import LTDTASDLoss
from mmrskd.models.losses.pkd_loss import PKDLoss
from mmrskd.models.losses.rotated_iou_loss import RotatedIoULoss

__all__ = [
    'ADMDLoss', 'CSAKDAttentionAlignmentLoss', 'CSAKDCrossSupervisionLoss',
    'DKEDFeatureCorrelationLoss', 'DKEDFeatureResponseLoss',
    'DKEDPredictionLoss',
    'LTDAttentionLoss', 'LTDCCDLoss', 'LTDTASDLoss',
    'CWDLoss', 'FGDLoss', 'FitNetLoss', 'JOLLoss', 'KDQualityFocalLoss',
    'LDLoss', 'LogitKDLoss', 'PKDLoss', 'RotatedIoULoss'
]
