from mmrskd.models.layers.c2f_layer import C2fBottleneck, CSPLayerWithTwoConv
from mmrskd.models.layers.cond_conv import CondConv2d
from mmrskd.models.layers.cross_level_fusion_block import \
    CrossLevelFusionBlock
from mmrskd.models.layers.csa_block import CSABlock
from mmrskd.models.layers.ddc import DynamicDirectionalConv2d
from mmrskd.models.layers.deform_conv import (GridSampleDeformConv2d,
                                              deform_conv2d)
from mmrskd.models.layers.drf_block import DRFBlock
from mmrskd.models.layers.local_implicit_calibration import \
    LocalImplicitCalibration

__all__ = [
    'C2fBottleneck', 'CondConv2d', 'CrossLevelFusionBlock', 'CSABlock',
    'CSPLayerWithTwoConv', 'DRFBlock', 'DynamicDirectionalConv2d',
    'GridSampleDeformConv2d', 'LocalImplicitCalibration', 'deform_conv2d'
]
