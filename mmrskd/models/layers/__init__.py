from mmrskd.models.layers.c2f_layer import C2fBottleneck, CSPLayerWithTwoConv
from mmrskd.models.layers.cond_conv import CondConv2d
from mmrskd.models.layers.csa_block import CSABlock
from mmrskd.models.layers.ddc import DynamicDirectionalConv2d
from mmrskd.models.layers.deform_conv import (GridSampleDeformConv2d,
                                              deform_conv2d)
from mmrskd.models.layers.drf_block import DRFBlock

__all__ = [
    'C2fBottleneck', 'CondConv2d', 'CSABlock', 'CSPLayerWithTwoConv',
    'DRFBlock', 'DynamicDirectionalConv2d', 'GridSampleDeformConv2d',
    'deform_conv2d'
]
