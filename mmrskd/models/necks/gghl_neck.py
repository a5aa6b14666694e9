"""GGHL's YOLOv3-style top-down FPN with SPP and DropBlock."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


class SpatialPyramidPooling(nn.Module):
    """YOLOv3-SPP pooling as in GGHL: the input and its stride-1 max pools
    are concatenated and fused by a plain 1x1 conv (with bias, no norm).

    mmdet's ``SPPBottleneck`` adds a reducing ConvModule before pooling and
    a normalised one after it, so it is not reused here.
    """

    def __init__(self, channels: int,
                 kernel_sizes: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        self.pools = nn.ModuleList(
            nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.fuse = nn.Conv2d(channels * (len(kernel_sizes) + 1), channels,
                              1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(torch.cat([x] + [pool(x) for pool in self.pools],
                                   dim=1))


@MODELS.register_module()
class GGHLNeck(BaseModule):
    """Top-down FPN of GGHL (Huang et al., TIP 2022).

    With ``c = out_channels[l]``, every level ends in a YOLOv3 conv set
    ``1x1 -> c, 3x3 -> 2c, 1x1 -> c, [DropBlock], 3x3 -> 2c, 1x1 -> c``
    (BN + LeakyReLU 0.1). The top level replaces the first 3x3 by SPP
    (``1x1 -> c, SPP, 3x3 -> 2c, ...``); lower levels take the upper
    output through ``1x1 -> c`` + nearest x2 upsampling, concatenated with
    their backbone feature.

    Args:
        in_channels (Sequence[int]): backbone channels, low to high level
            (Darknet-53: 256, 512, 1024).
        out_channels (Sequence[int]): output channels per level
            (GGHL: 128, 256, 512).
        spp_kernel_sizes (Sequence[int]): SPP max-pool sizes.
        dropblock_cfg (dict, optional): DropBlock inside every conv set
            (GGHL: ``block_size=3, drop_prob=0.1``); ``None`` disables it.
            mmdet's DropBlock needs maps larger than its block.
        conv_cfg, norm_cfg, act_cfg (dict): of all ConvModules.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024),
                 out_channels: Sequence[int] = (128, 256, 512),
                 spp_kernel_sizes: Sequence[int] = (5, 9, 13),
                 dropblock_cfg: OptConfigType = dict(
                     type='mmdet.DropBlock', drop_prob=0.1, block_size=3),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.1),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(out_channels):
            raise MMRSKDError(
                f'GGHLNeck: {len(in_channels)} in_channels but '
                f'{len(out_channels)} out_channels; give one per level')
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        self.dropblock_cfg = dropblock_cfg
        self.conv_kwargs = dict(
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        top = len(in_channels) - 1
        top_c = out_channels[top]
        self.conv_sets = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        for level in range(top):
            c = out_channels[level]
            self.lateral_convs.append(
                ConvModule(out_channels[level + 1], c, 1, **self.conv_kwargs))
            self.conv_sets.append(
                nn.Sequential(
                    ConvModule(in_channels[level] + c, c, 1,
                               **self.conv_kwargs),
                    *self._conv_set_tail(c)))
        self.conv_sets.append(
            nn.Sequential(
                ConvModule(in_channels[top], top_c, 1, **self.conv_kwargs),
                SpatialPyramidPooling(top_c, spp_kernel_sizes),
                *self._conv_set_tail(top_c)))

    def _conv_set_tail(self, channels: int) -> List[nn.Module]:
        """``3x3 -> 2c, 1x1 -> c, [DropBlock], 3x3 -> 2c, 1x1 -> c``."""
        def expand():
            return ConvModule(
                channels, 2 * channels, 3, padding=1, **self.conv_kwargs)

        def squeeze():
            return ConvModule(2 * channels, channels, 1, **self.conv_kwargs)

        dropblock = [MODELS.build(self.dropblock_cfg)] \
            if self.dropblock_cfg is not None else []
        return [expand(), squeeze(), *dropblock, expand(), squeeze()]

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        """Fuse the backbone features top-down.

        Args:
            inputs (tuple[Tensor]): (B, in_channels[l], H_l, W_l), low to
                high level.

        Returns:
            tuple[Tensor]: (B, out_channels[l], H_l, W_l), low to high.
        """
        if len(inputs) != len(self.in_channels):
            raise MMRSKDError(
                f'GGHLNeck: got {len(inputs)} inputs for '
                f'{len(self.in_channels)} in_channels; set the backbone '
                'out_indices to match')
        outs: List[Optional[Tensor]] = [None] * len(inputs)
        outs[-1] = self.conv_sets[-1](inputs[-1])
        for level in range(len(inputs) - 2, -1, -1):
            upper = F.interpolate(
                self.lateral_convs[level](outs[level + 1]),
                size=inputs[level].shape[-2:],
                mode='nearest')
            outs[level] = self.conv_sets[level](
                torch.cat([upper, inputs[level]], dim=1))
        return tuple(outs)
