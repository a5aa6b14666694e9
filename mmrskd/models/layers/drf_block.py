"""LO-Det's dynamic receptive field (DRF) block."""
from typing import Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.utils import ConfigType
from torch import Tensor

from mmrskd.models.layers.cond_conv import CondConv2d
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class DRFBlock(nn.Module):
    """Dynamic receptive field (Huang et al., LO-Det, TGRS 2021).

    The channels are split in two halves; each runs a depthwise 3x3
    :class:`CondConv2d` with its own dilation (+ BN) and a pointwise 1x1
    ConvModule; the two branches are summed, so the output has half the
    input channels.

    Args:
        channels (int): input channels (even).
        dilations (tuple[int, int]): dilation of the first and second half.
        num_experts (int): CondConv experts. Defaults to 1 (LO-Det).
        norm_cfg, act_cfg (dict): of the convs (no activation after the
            depthwise conv).
    """

    def __init__(self,
                 channels: int,
                 dilations: Tuple[int, int],
                 num_experts: int = 1,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.1)) -> None:
        super().__init__()
        if channels % 2 or len(dilations) != 2:
            raise MMRSKDError(
                f'DRFBlock: got channels={channels}, dilations={dilations}; '
                'channels must be even (split into two halves) and dilations '
                'a pair, one per half')
        self.half = channels // 2
        self.branches = nn.ModuleList()
        for dilation in dilations:
            self.branches.append(
                nn.Sequential(
                    CondConv2d(
                        self.half,
                        self.half,
                        3,
                        padding=dilation,
                        dilation=dilation,
                        groups=self.half,
                        num_experts=num_experts),
                    build_norm_layer(norm_cfg, self.half)[1],
                    ConvModule(
                        self.half,
                        self.half,
                        1,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg)))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C / 2, H, W)."""
        first, second = x.split(self.half, dim=1)
        return self.branches[0](first) + self.branches[1](second)
