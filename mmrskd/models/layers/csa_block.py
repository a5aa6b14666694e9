"""LO-Det's channel separation-aggregation (CSA) block."""
import torch
import torch.nn as nn
from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.utils import ConfigType
from torch import Tensor

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle: (B, g * c, H, W), interleave the g
    groups."""
    batch_size, channels, height, width = x.shape
    x = x.view(batch_size, groups, channels // groups, height, width)
    return x.transpose(1, 2).reshape(batch_size, channels, height, width)


@MODELS.register_module()
class CSABlock(nn.Module):
    """Channel separation-aggregation (Huang et al., LO-Det, TGRS 2021).

    A depthwise-separable transform (dw ``kernel_size`` + BN, then pw 1x1 +
    BN + activation) runs on part of the channels, the rest is passed
    through, both are concatenated and channel-shuffled:

    * ``expand=False``: the last ``channels - round(split_ratio *
      channels)`` channels are transformed; output has ``channels``
      channels (LO-Det's ``CSA``/``Shuffle_new``).
    * ``expand=True``: all channels are transformed and concatenated with
      the input; output has ``2 * channels`` (LO-Det's ``CSA_part``).

    Args:
        channels (int): input channels.
        expand (bool): see above. Defaults to False.
        split_ratio (float): pass-through share when ``expand=False``.
        shuffle_groups (int): channel shuffle groups. Defaults to 4.
        kernel_size (int): depthwise kernel. Defaults to 3.
        norm_cfg, act_cfg (dict): of the separable conv.
    """

    def __init__(self,
                 channels: int,
                 expand: bool = False,
                 split_ratio: float = 0.5,
                 shuffle_groups: int = 4,
                 kernel_size: int = 3,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.1)) -> None:
        super().__init__()
        self.expand = expand
        self.num_kept = 0 if expand else round(split_ratio * channels)
        out_channels = 2 * channels if expand else channels
        if out_channels % shuffle_groups:
            raise MMRSKDError(
                f'CSABlock: {out_channels} output channels are not divisible '
                f'by shuffle_groups={shuffle_groups}; change the neck widths '
                'or shuffle_groups')
        self.shuffle_groups = shuffle_groups
        transformed = channels - self.num_kept
        self.transform = DepthwiseSeparableConvModule(
            transformed,
            transformed,
            kernel_size,
            padding=(kernel_size - 1) // 2,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            dw_act_cfg=None)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C or 2C, H, W)."""
        kept = x if self.expand else x[:, :self.num_kept]
        transformed = self.transform(x[:, self.num_kept:])
        return channel_shuffle(
            torch.cat([kept, transformed], dim=1), self.shuffle_groups)
