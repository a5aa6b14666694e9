"""LO-Det's CSA-DRF-FPN neck."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmrskd.models.layers.csa_block import CSABlock
from mmrskd.models.layers.drf_block import DRFBlock
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class CSADRFFPN(BaseModule):
    """CSA-DRF-FPN of LO-Det (Huang et al., TGRS 2021), as used by GGHL's
    ``LODet_GGHL``.

    1. Bottom-up: a 3x3 stride-2 convolution (DCNv2 by default) takes level
       ``l`` to level ``l + 1``, where it is concatenated with the backbone
       feature: ``b_0 = x_0``, ``b_{l+1} = cat(down_l(b_l), x_{l+1})``, and
       ``down_l`` keeps ``in_channels[l]`` channels.
    2. Top-down, with ``c = out_channels[l]``: the top level runs
       ``1x1 -> c, DRF -> c/2, CSA(expand) -> c``; each lower level adds
       ``CSA(1x1(b_l))`` (lateral) and ``upsample(1x1(upper))`` (a plain
       1x1 conv with bias), concatenates them and runs ``1x1 -> c`` then
       ``DRF, [DropBlock], CSA(expand)`` where ``drf_dilations[l]`` is set,
       else ``CSA, [DropBlock], CSA``.
    3. Every output goes through one more CSA block (LO-Det's
       ``conv*_0``); the prediction convs belong to the head.

    Args:
        in_channels (Sequence[int]): backbone channels, low to high
            (MobileNetV2 ``out_indices=(2, 4, 7)``: 32, 96, 1280).
        out_channels (Sequence[int]): output channels (256, 512, 1024).
        drf_dilations (Sequence): per level a pair of DRF dilations or
            ``None`` (LO-Det: ``None, (2, 3), (4, 6)``).
        shuffle_groups (int): channel shuffle groups of all CSA blocks.
            LO-Det uses 8 in the top expanding block and 4 elsewhere; the
            shuffle has no parameters. Defaults to 4.
        num_experts (int): CondConv experts in DRF blocks. Defaults to 1.
        downsample_conv_cfg (dict, optional): conv of the bottom-up path;
            ``dict(type='DCNv2', deform_groups=1)`` is mmcv's
            ``ModulatedDeformConv2dPack`` (CPU and CUDA kernels); ``None``
            gives a plain stride-2 conv.
        dropblock_cfg (dict, optional): DropBlock in every conv set but the
            top one; ``None`` disables it.
        norm_cfg, act_cfg (dict): of all ConvModules.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (32, 96, 1280),
                 out_channels: Sequence[int] = (256, 512, 1024),
                 drf_dilations: Sequence[Optional[Tuple[int, int]]] = (
                     None, (2, 3), (4, 6)),
                 shuffle_groups: int = 4,
                 num_experts: int = 1,
                 downsample_conv_cfg: OptConfigType = dict(
                     type='DCNv2', deform_groups=1),
                 dropblock_cfg: OptConfigType = dict(
                     type='mmdet.DropBlock', drop_prob=0.1, block_size=3),
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.1),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        num_levels = len(in_channels)
        if len(out_channels) != num_levels or \
                len(drf_dilations) != num_levels:
            raise MMRSKDError(
                f'CSADRFFPN: in_channels ({num_levels}), out_channels '
                f'({len(out_channels)}) and drf_dilations '
                f'({len(drf_dilations)}) need one entry per level')
        if drf_dilations[-1] is None:
            raise MMRSKDError(
                'CSADRFFPN: the top level needs DRF dilations (LO-Det: '
                '(4, 6)); set drf_dilations[-1]')
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        conv_kwargs = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        csa_kwargs = dict(shuffle_groups=shuffle_groups, **conv_kwargs)

        routed = [in_channels[0]] + [
            in_channels[level - 1] + in_channels[level]
            for level in range(1, num_levels)
        ]
        self.downsamples = nn.ModuleList(
            build_conv_layer(
                downsample_conv_cfg,
                routed[level],
                in_channels[level],
                3,
                stride=2,
                padding=1) for level in range(num_levels - 1))

        self.laterals = nn.ModuleList()
        self.top_downs = nn.ModuleList()
        self.conv_sets = nn.ModuleList()
        self.out_blocks = nn.ModuleList()
        for level, c in enumerate(out_channels):
            is_top = level == num_levels - 1
            set_in = routed[level] if is_top else 2 * c
            layers: List[nn.Module] = [
                ConvModule(set_in, c, 1, **conv_kwargs)
            ]
            dilations = drf_dilations[level]
            if dilations is not None:
                layers.append(DRFBlock(c, dilations, num_experts,
                                       **conv_kwargs))
                second = CSABlock(c // 2, expand=True, **csa_kwargs)
            else:
                layers.append(CSABlock(c, **csa_kwargs))
                second = CSABlock(c, **csa_kwargs)
            if dropblock_cfg is not None and not is_top:
                layers.append(MODELS.build(dropblock_cfg))
            layers.append(second)
            self.conv_sets.append(nn.Sequential(*layers))
            self.out_blocks.append(CSABlock(c, **csa_kwargs))
            if not is_top:
                self.laterals.append(
                    nn.Sequential(
                        ConvModule(routed[level], c, 1, **conv_kwargs),
                        CSABlock(c, **csa_kwargs)))
                self.top_downs.append(nn.Conv2d(out_channels[level + 1], c,
                                                1))

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        """Fuse the backbone features bottom-up, then top-down.

        Args:
            inputs (tuple[Tensor]): (B, in_channels[l], H_l, W_l), low to
                high level.

        Returns:
            tuple[Tensor]: (B, out_channels[l], H_l, W_l), low to high.
        """
        if len(inputs) != len(self.in_channels):
            raise MMRSKDError(
                f'CSADRFFPN: got {len(inputs)} inputs for '
                f'{len(self.in_channels)} in_channels; set the backbone '
                'out_indices to match')
        routed = [inputs[0]]
        for level, down in enumerate(self.downsamples):
            routed.append(
                torch.cat([down(routed[level]), inputs[level + 1]], dim=1))

        feats: List[Optional[Tensor]] = [None] * len(inputs)
        feats[-1] = self.conv_sets[-1](routed[-1])
        for level in range(len(inputs) - 2, -1, -1):
            upper = F.interpolate(
                self.top_downs[level](feats[level + 1]),
                size=routed[level].shape[-2:],
                mode='nearest')
            lateral = self.laterals[level](routed[level])
            feats[level] = self.conv_sets[level](
                torch.cat([upper, lateral], dim=1))
        return tuple(block(feat)
                     for block, feat in zip(self.out_blocks, feats))
