"""Conditionally parameterised convolution (CondConv, Yang et al., NeurIPS
2019) as used by LO-Det's dynamic receptive field blocks."""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class CondConv2d(nn.Module):
    """Per-sample kernel ``W(x) = sum_e sigmoid(fc(GAP(x)))_e * W_e``.

    The mixed kernels of a batch are applied at once as a grouped convolution
    over the batch (groups = ``groups * B``). LO-Det uses one expert, i.e. a
    static kernel scaled by a learned per-sample gate.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel size.
        stride, padding, dilation, groups: as in ``nn.Conv2d``.
        bias (bool): add a per-expert bias, mixed like the kernels.
        num_experts (int): number of expert kernels. Defaults to 1.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 dilation: int = 1,
                 groups: int = 1,
                 bias: bool = True,
                 num_experts: int = 1) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise MMRSKDError(
                f'CondConv2d: in_channels={in_channels} and out_channels='
                f'{out_channels} must both be divisible by groups={groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.num_experts = num_experts
        self.routing = nn.Linear(in_channels, num_experts)
        self.weight = nn.Parameter(
            torch.empty(num_experts, out_channels, in_channels // groups,
                        kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(num_experts, out_channels)) \
            if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each expert is initialised like an ``nn.Conv2d`` kernel."""
        for expert in self.weight:
            nn.init.kaiming_uniform_(expert, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0, 0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def routing_weights(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_experts) expert gates in (0, 1)."""
        return self.routing(x.mean(dim=(2, 3))).sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H', W')."""
        batch_size, _, height, width = x.shape
        gates = self.routing_weights(x)
        kernel_shape: Tuple[int, ...] = self.weight.shape[2:]
        weight = (gates @ self.weight.flatten(1)).view(-1, *kernel_shape)
        bias = (gates @ self.bias).flatten() if self.bias is not None \
            else None
        out = F.conv2d(
            x.reshape(1, -1, height, width),
            weight,
            bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups * batch_size)
        return out.view(batch_size, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, '
                f'groups={self.groups}, num_experts={self.num_experts}')
