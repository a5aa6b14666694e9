import math
from typing import List, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones.csp_darknet import SPPBottleneck
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmrskd.models.layers.c2f_layer import CSPLayerWithTwoConv
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

# PyTorch's default Conv2d init, which YOLOv8 trains from
TORCH_DEFAULT_CONV_INIT = dict(
    type='Kaiming',
    layer='Conv2d',
    a=math.sqrt(5),
    distribution='uniform',
    mode='fan_in',
    nonlinearity='leaky_relu')


def make_divisible(channels: float, widen_factor: float,
                   divisor: int = 8) -> int:
    """Scale a width and round it up to a multiple of ``divisor``."""
    return math.ceil(channels * widen_factor / divisor) * divisor


def make_round(num_blocks: int, deepen_factor: float) -> int:
    """Scale a depth; single blocks stay single (YOLOv5/v8 rule)."""
    return max(round(num_blocks * deepen_factor), 1) if num_blocks > 1 \
        else num_blocks


@MODELS.register_module()
class YOLOv8CSPDarknet(BaseModule):
    """CSP-Darknet with C2f blocks and SPPF: the YOLOv8 P5 backbone.

    Stem (3x3 s2) and four stages of ``3x3 s2 ConvModule + C2f``; the last
    stage ends with SPPF, realised as mmdet's :class:`SPPBottleneck` with
    pools (5, 9, 13): chained 5x5 max-pools equal 9x9 and 13x13 ones exactly,
    with the same parameters.

    Model sizes (deepen, widen, last_stage_out_channels): n (0.33, 0.25,
    1024), s (0.33, 0.5, 1024), m (0.67, 0.75, 768), l (1.0, 1.0, 512),
    x (1.0, 1.25, 512).

    Args:
        arch (str): Only ``'P5'`` (strides 4, 8, 16, 32 for stages 1-4).
        last_stage_out_channels (int): Unscaled width of stage 4.
            Defaults to 1024.
        deepen_factor (float): Depth multiplier. Defaults to 1.0.
        widen_factor (float): Width multiplier. Defaults to 1.0.
        input_channels (int): Image channels. Defaults to 3.
        out_indices (Sequence[int]): Outputs, 0 = stem ... 4 = stage 4.
            Defaults to (2, 3, 4) (strides 8, 16, 32).
        frozen_stages (int): Freeze the stem and stages up to this index;
            -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep BN layers in eval mode while training.
            Defaults to False.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Defaults to BN(momentum=0.03, eps=0.001).
        act_cfg (dict): Defaults to SiLU.
        init_cfg (dict, optional): Defaults to PyTorch's conv init.
    """
    # in_channels, out_channels, num_blocks, add_identity, use_spp
    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, None, 3, True, True]],
    }

    def __init__(self,
                 arch: str = 'P5',
                 last_stage_out_channels: int = 1024,
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 input_channels: int = 3,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(
                     type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = TORCH_DEFAULT_CONV_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings:
            raise MMRSKDError(
                f'YOLOv8CSPDarknet: arch={arch!r} is not supported; use '
                f'one of {sorted(self.arch_settings)}')
        settings = [list(stage) for stage in self.arch_settings[arch]]
        settings[-1][1] = last_stage_out_channels
        num_layers = len(settings) + 1
        if not set(out_indices) <= set(range(num_layers)):
            raise MMRSKDError(
                f'YOLOv8CSPDarknet: out_indices={tuple(out_indices)} must be '
                f'in range({num_layers}) (0 = stem)')
        if frozen_stages not in range(-1, num_layers):
            raise MMRSKDError(
                f'YOLOv8CSPDarknet: frozen_stages={frozen_stages} must be in '
                f'range(-1, {num_layers})')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.stem = ConvModule(
            input_channels,
            make_divisible(settings[0][0], widen_factor),
            3,
            stride=2,
            padding=1,
            **cfgs)
        self.layers: List[str] = ['stem']
        for index, (in_channels, out_channels, num_blocks, add_identity,
                    use_spp) in enumerate(settings, start=1):
            in_channels = make_divisible(in_channels, widen_factor)
            out_channels = make_divisible(out_channels, widen_factor)
            stage = [
                ConvModule(
                    in_channels, out_channels, 3, stride=2, padding=1, **cfgs),
                CSPLayerWithTwoConv(
                    out_channels,
                    out_channels,
                    num_blocks=make_round(num_blocks, deepen_factor),
                    add_identity=add_identity,
                    **cfgs)
            ]
            if use_spp:
                stage.append(
                    SPPBottleneck(
                        out_channels,
                        out_channels,
                        kernel_sizes=(5, 9, 13),
                        **cfgs))
            self.add_module(f'stage{index}', nn.Sequential(*stage))
            self.layers.append(f'stage{index}')

    def _freeze_stages(self) -> None:
        for name in self.layers[:self.frozen_stages + 1]:
            layer = getattr(self, name)
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'YOLOv8CSPDarknet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """
        Args:
            x (Tensor): [B, 3, H, W].

        Returns:
            tuple[Tensor]: the ``out_indices`` maps; index i has stride
            ``2 ** (i + 1)``.
        """
        outs = []
        for index, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
