from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmrskd.models.backbones.yolov8_csp_darknet import (
    TORCH_DEFAULT_CONV_INIT, make_divisible, make_round)
from mmrskd.models.layers.c2f_layer import CSPLayerWithTwoConv
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class YOLOv8PAFPN(BaseModule):
    """Path-aggregation FPN of YOLOv8: a top-down pass (nearest x2 upsample,
    concat, C2f) followed by a bottom-up pass (3x3 s2 conv, concat, C2f);
    no lateral or output convs. C2f blocks here have no residuals.

    Channels are given unscaled, as in the backbone, and multiplied by
    ``widen_factor`` (rounded up to multiples of 8).

    Args:
        in_channels (Sequence[int]): Unscaled input widths, fine to coarse,
            e.g. [256, 512, 1024]; the last is the backbone's
            ``last_stage_out_channels``.
        out_channels (Sequence[int]): Unscaled output widths; YOLOv8 uses
            ``in_channels``.
        deepen_factor (float): Depth multiplier. Defaults to 1.0.
        widen_factor (float): Width multiplier. Defaults to 1.0.
        num_csp_blocks (int): Unscaled bottlenecks per C2f. Defaults to 3.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Defaults to BN(momentum=0.03, eps=0.001).
        act_cfg (dict): Defaults to SiLU.
        init_cfg (dict, optional): Defaults to PyTorch's conv init.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 num_csp_blocks: int = 3,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(
                     type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = TORCH_DEFAULT_CONV_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(out_channels) or len(in_channels) < 2:
            raise MMRSKDError(
                f'YOLOv8PAFPN: in_channels={list(in_channels)} and '
                f'out_channels={list(out_channels)} must list the same '
                'number (>= 2) of levels')
        self.in_channels = [make_divisible(c, widen_factor)
                            for c in in_channels]
        self.out_channels = [make_divisible(c, widen_factor)
                             for c in out_channels]
        num_blocks = make_round(num_csp_blocks, deepen_factor)
        cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        num_levels = len(in_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')

        # widths of the top-down maps; the coarsest is the input itself
        inner_channels = self.out_channels[:-1] + self.in_channels[-1:]
        # top_down_layers[0] fuses the two coarsest levels
        self.top_down_layers = nn.ModuleList()
        for level in range(num_levels - 1, 0, -1):
            self.top_down_layers.append(
                CSPLayerWithTwoConv(
                    inner_channels[level] + self.in_channels[level - 1],
                    self.out_channels[level - 1],
                    num_blocks=num_blocks,
                    add_identity=False,
                    **cfgs))
        self.downsample_layers = nn.ModuleList()
        self.bottom_up_layers = nn.ModuleList()
        for level in range(num_levels - 1):
            self.downsample_layers.append(
                ConvModule(
                    self.out_channels[level],
                    self.out_channels[level],
                    3,
                    stride=2,
                    padding=1,
                    **cfgs))
            self.bottom_up_layers.append(
                CSPLayerWithTwoConv(
                    self.out_channels[level] + inner_channels[level + 1],
                    self.out_channels[level + 1],
                    num_blocks=num_blocks,
                    add_identity=False,
                    **cfgs))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """
        Args:
            inputs (Sequence[Tensor]): Backbone maps, fine to coarse, level
                i of shape [B, in_channels[i], H_i, W_i] with
                ``H_i = 2 * H_{i+1}``.

        Returns:
            tuple[Tensor]: Level i of shape [B, out_channels[i], H_i, W_i].
        """
        if len(inputs) != len(self.in_channels):
            raise MMRSKDError(
                f'YOLOv8PAFPN: got {len(inputs)} input maps but was built '
                f'for {len(self.in_channels)}; check the backbone '
                'out_indices')
        # top-down: inner[i] is the fused map of level i
        inner: List[Tensor] = [inputs[-1]]
        for step, level in enumerate(range(len(inputs) - 1, 0, -1)):
            fused = torch.cat([self.upsample(inner[0]), inputs[level - 1]], 1)
            inner.insert(0, self.top_down_layers[step](fused))
        outs = [inner[0]]
        for level in range(len(inputs) - 1):
            fused = torch.cat(
                [self.downsample_layers[level](outs[-1]), inner[level + 1]], 1)
            outs.append(self.bottom_up_layers[level](fused))
        return tuple(outs)
