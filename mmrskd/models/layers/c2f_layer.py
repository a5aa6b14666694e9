"""C2f, the CSP block of YOLOv8 (``CSPLayerWithTwoConv`` in mmyolo).

mmdet's :class:`~mmdet.models.layers.CSPLayer` splits the input with two
separate 1x1 convs and its bottlenecks start with a 1x1 conv; C2f splits one
1x1 conv's output in two, runs full 3x3-3x3 bottlenecks on one half and keeps
every intermediate map for the final 1x1 fusion, so it is built here.
Attribute names follow mmyolo (``main_conv``, ``blocks.i.conv1``, ...).
"""
from typing import List

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


class C2fBottleneck(BaseModule):
    """Two 3x3 ConvModules with an optional residual (YOLOv8 Bottleneck).

    Args:
        channels (int): Input and output channels.
        add_identity (bool): Add the input to the output. Defaults to True.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config.
        act_cfg (dict): Activation config.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 channels: int,
                 add_identity: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(
                     type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv1 = ConvModule(
            channels,
            channels,
            3,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.conv2 = ConvModule(
            channels,
            channels,
            3,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.add_identity = add_identity

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, C, H, W]."""
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayerWithTwoConv(BaseModule):
    """C2f: 1x1 conv, split in two halves, ``num_blocks`` bottlenecks chained
    on the second half, 1x1 conv over all ``2 + num_blocks`` maps.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expand_ratio (float): Half-width ratio ``mid = out * ratio``.
            Defaults to 0.5.
        num_blocks (int): Bottlenecks. Defaults to 1.
        add_identity (bool): Residuals in the bottlenecks (True in the
            backbone, False in the neck). Defaults to True.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config.
        act_cfg (dict): Activation config.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 expand_ratio: float = 0.5,
                 num_blocks: int = 1,
                 add_identity: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(
                     type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.mid_channels = int(out_channels * expand_ratio)
        self.main_conv = ConvModule(
            in_channels,
            2 * self.mid_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.final_conv = ConvModule(
            (2 + num_blocks) * self.mid_channels,
            out_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.blocks = nn.ModuleList(
            C2fBottleneck(
                self.mid_channels,
                add_identity=add_identity,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg) for _ in range(num_blocks))

    def forward(self, x: Tensor) -> Tensor:
        """[B, in_channels, H, W] -> [B, out_channels, H, W]."""
        maps: List[Tensor] = list(
            self.main_conv(x).split(self.mid_channels, dim=1))
        for block in self.blocks:
            maps.append(block(maps[-1]))
        return self.final_conv(torch.cat(maps, dim=1))
