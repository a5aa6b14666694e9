"""Dynamic Directional Convolution (DDC) of DKED (Huang, Li & Tao, ICASSP
2022).

Only the authors' compiled 2021 prototype is public (see
``docs/detectors_datasets.md`` §3.2). This is a reimplementation of its idea
with the prototype's defects fixed: the kernel bank is rebuilt from
registered base parameters on every forward, so it trains, follows
``.to()``/``.half()`` and keeps the rotated copies tied to their base kernel.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


def _square_size(kernel_size: Union[int, Tuple[int, int]]) -> int:
    height, width = _pair(kernel_size)
    if height != width:
        raise MMRSKDError(
            f'DDC: kernel_size={tuple(kernel_size)} is not square; rotated '
            'kernels need kernel_size=k (an int) or (k, k)')
    return height


def _rotation_grid(angle: float, kernel_size: int) -> Tensor:
    """Sampling grid that turns a ``k x k`` kernel by ``angle`` degrees.

    The direction matches ``torch.rot90(w, 1, dims=(-2, -1))`` at 90 degrees
    (align_corners maps the corner taps onto each other).

    Returns:
        Tensor: grid of shape [1, k, k, 2] for :func:`F.grid_sample`.
    """
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    matrix = torch.tensor([[cos, -sin, 0.], [sin, cos, 0.]],
                          dtype=torch.float64).unsqueeze(0)
    return F.affine_grid(
        matrix, (1, 1, kernel_size, kernel_size), align_corners=True)


@MODELS.register_module('DDC')
class DynamicDirectionalConv2d(nn.Module):
    """Conv2d whose kernel is a per-sample mixture of oriented kernels.

    The bank holds every base kernel turned to every angle in ``angles``:
    ``num_base_kernels`` free square kernels and, optionally,
    ``num_triangular_kernels`` free lower-triangular ones (``k(k+1)/2``
    parameters each), so ``num_kernels = (num_base_kernels +
    num_triangular_kernels) * len(angles)``. Angles that are multiples of 90
    degrees are exact (:func:`torch.rot90`); other angles resample the kernel
    bilinearly (:func:`F.affine_grid` + :func:`F.grid_sample`, zero outside).

    Per sample, attention ``GAP -> 1x1 conv -> ReLU -> 1x1 conv ->
    softmax(z / T)`` weights the bank, and the mixed kernels run as one
    grouped convolution over the batch (``groups = groups * B``). The
    temperature ``T`` is a buffer (saved in the state dict) lowered during
    training by :class:`mmrskd.engine.hooks.DDCTemperatureHook`.

    It takes the arguments of :class:`torch.nn.Conv2d`, so it can be used as
    ``conv_cfg=dict(type='DDC', ...)`` wherever mmcv builds a conv layer.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int, int]): Square kernel size. Default 3.
        stride (int | tuple[int, int]): Default 1.
        padding (int | tuple[int, int]): Zero padding. Default 0.
        dilation (int | tuple[int, int]): Default 1.
        groups (int): Channel groups. Default 1.
        bias (bool): Add a learned per-channel bias, shared by all kernels
            (a bias is unchanged by rotation). Default True.
        num_base_kernels (int): Free square kernels. Default 1.
        num_triangular_kernels (int): Free lower-triangular kernels (the
            prototype's ``tri`` family). Default 0.
        angles (Sequence[float]): Counter-clockwise orientations, in degrees,
            each base kernel is turned to. Default (0, 90, 180, 270).
        attention_ratio (float): Hidden width of the attention as a fraction
            of ``in_channels`` (at least ``num_kernels``). Default 0.25.
        temperature (float): Initial softmax temperature. Default 34.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]] = 3,
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding: Union[int, Tuple[int, int]] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 bias: bool = True,
                 num_base_kernels: int = 1,
                 num_triangular_kernels: int = 0,
                 angles: Sequence[float] = (0, 90, 180, 270),
                 attention_ratio: float = 0.25,
                 temperature: float = 34.0) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise MMRSKDError(
                f'DDC: in_channels={in_channels} and out_channels='
                f'{out_channels} must both be divisible by groups={groups}')
        if num_base_kernels < 0 or num_triangular_kernels < 0 or (
                num_base_kernels + num_triangular_kernels == 0):
            raise MMRSKDError(
                'DDC: set num_base_kernels and/or num_triangular_kernels to '
                f'a positive count (got {num_base_kernels} and '
                f'{num_triangular_kernels})')
        if len(angles) == 0:
            raise MMRSKDError('DDC: angles is empty; use e.g. '
                              'angles=(0, 90, 180, 270)')
        size = _square_size(kernel_size)

        # nn.Conv2d attributes, read by mmcv's ConvModule
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (size, size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)

        self.angles = tuple(float(angle) for angle in angles)
        self.num_base_kernels = num_base_kernels
        self.num_triangular_kernels = num_triangular_kernels
        self.num_kernels = (num_base_kernels +
                            num_triangular_kernels) * len(self.angles)

        in_per_group = in_channels // groups
        self.base_weight = nn.Parameter(
            torch.empty(num_base_kernels, out_channels, in_per_group, size,
                        size)) if num_base_kernels else None
        self.triangular_weight = None
        if num_triangular_kernels:
            # taps on and below the diagonal, as flat indices into k x k
            rows, cols = torch.tril_indices(size, size)
            self.register_buffer(
                'tril_index', rows * size + cols, persistent=False)
            self.triangular_weight = nn.Parameter(
                torch.empty(num_triangular_kernels, out_channels,
                            in_per_group, len(rows)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        for index, angle in enumerate(self.angles):
            if angle % 90:
                self.register_buffer(
                    f'rotation_grid{index}',
                    _rotation_grid(angle, size).float(),
                    persistent=False)

        hidden = max(int(in_channels * attention_ratio), self.num_kernels)
        self.router = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, self.num_kernels, 1))
        self.register_buffer('temperature', torch.tensor(0.))
        self.set_temperature(temperature)
        self.init_weights()

    def init_weights(self) -> None:
        """Initialise like :class:`torch.nn.Conv2d` (uniform, bound
        ``1/sqrt(fan_in)``); rotated copies inherit it from their base.

        Having this method also stops ``ConvModule`` from re-initialising the
        layer as if it were a plain conv.
        """
        size = self.kernel_size[0]
        in_per_group = self.in_channels // self.groups
        if self.base_weight is not None:
            bound = 1 / math.sqrt(in_per_group * size * size)
            nn.init.uniform_(self.base_weight, -bound, bound)
        if self.triangular_weight is not None:
            bound = 1 / math.sqrt(in_per_group * len(self.tril_index))
            nn.init.uniform_(self.triangular_weight, -bound, bound)
        if self.bias is not None:
            bound = 1 / math.sqrt(in_per_group * size * size)
            nn.init.uniform_(self.bias, -bound, bound)

    def set_temperature(self, temperature: float) -> None:
        """Set the attention softmax temperature (must be > 0)."""
        if not temperature > 0:
            raise MMRSKDError(
                f'DDC: temperature must be > 0, got {temperature}')
        self.temperature.fill_(float(temperature))

    def _rotate(self, weight: Tensor, index: int) -> Tensor:
        """Turn kernels ``[..., k, k]`` to ``self.angles[index]``."""
        angle = self.angles[index]
        if angle % 90 == 0:
            return torch.rot90(weight, int(angle // 90) % 4, dims=(-2, -1))
        size = self.kernel_size[0]
        flat = weight.reshape(-1, 1, size, size)
        grid = getattr(self, f'rotation_grid{index}').to(flat.dtype)
        turned = F.grid_sample(
            flat,
            grid.expand(flat.shape[0], -1, -1, -1),
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True)
        return turned.view_as(weight)

    def kernel_bank(self) -> Tensor:
        """All oriented kernels, built from the base parameters.

        Returns:
            Tensor: [num_kernels, out_channels, in_channels // groups, k, k],
            ordered base-major: kernel ``b * len(angles) + a`` is base kernel
            ``b`` (square ones first, then triangular) turned to
            ``angles[a]``.
        """
        size = self.kernel_size[0]
        bases = []
        if self.base_weight is not None:
            bases.append(self.base_weight)
        if self.triangular_weight is not None:
            tri = self.triangular_weight
            full = tri.new_zeros(*tri.shape[:-1], size * size)
            full = full.index_copy(-1, self.tril_index, tri)
            bases.append(full.view(*tri.shape[:-1], size, size))
        bases = torch.cat(bases)
        turned = torch.stack(
            [self._rotate(bases, index) for index in range(len(self.angles))],
            dim=1)
        return turned.flatten(0, 1)

    def compute_attention(self, x: Tensor) -> Tensor:
        """Per-sample mixing weights.

        Args:
            x (Tensor): [B, in_channels, H, W].

        Returns:
            Tensor: [B, num_kernels], rows sum to 1.
        """
        logits = self.router(x).flatten(1)
        return torch.softmax(logits / self.temperature.to(logits.dtype), 1)

    def forward(self, x: Tensor, attention: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            x (Tensor): [B, in_channels, H, W].
            attention (Tensor, optional): [B, num_kernels] mixing weights
                used instead of the computed ones (e.g. to pin one
                orientation).

        Returns:
            Tensor: [B, out_channels, H_out, W_out], as :func:`F.conv2d`.
        """
        batch, channels, height, width = x.shape
        if channels != self.in_channels:
            raise MMRSKDError(
                f'DDC: input has {channels} channels but the layer was built '
                f'with in_channels={self.in_channels}')
        if attention is None:
            attention = self.compute_attention(x)
        elif attention.shape != (batch, self.num_kernels):
            raise MMRSKDError(
                f'DDC: attention must have shape ({batch}, '
                f'{self.num_kernels}), got {tuple(attention.shape)}')
        bank = self.kernel_bank()
        weight = torch.mm(attention.to(bank.dtype), bank.flatten(1))
        weight = weight.view(batch * self.out_channels, *bank.shape[2:])
        # one grouped conv applies every sample's own kernel
        out = F.conv2d(
            x.reshape(1, batch * channels, height, width),
            weight,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups * batch)
        out = out.view(batch, self.out_channels, *out.shape[-2:])
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def forward_at(self, x: Tensor, positions: Tensor) -> Tensor:
        """:meth:`forward` at some output positions only, e.g. where a loss
        weight is non-zero: the same values, at a cost that scales with the
        positions (their patches gathered, one matmul per sample).

        Args:
            x (Tensor): [B, in_channels, H, W].
            positions (Tensor): (M,) long flat indices into the output's
                (B, H_out, W_out) positions, in increasing order.

        Returns:
            Tensor: [M, out_channels], row ``m`` equal to
            ``forward(x)`` at ``positions[m]``.
        """
        batch, channels = x.shape[:2]
        if channels != self.in_channels:
            raise MMRSKDError(
                f'DDC: input has {channels} channels but the layer was built '
                f'with in_channels={self.in_channels}')
        bank = self.kernel_bank()
        weight = torch.mm(
            self.compute_attention(x).to(bank.dtype), bank.flatten(1))
        # (B, groups, out / groups, in / groups * k * k)
        weight = weight.view(batch, self.groups, -1, bank[0, 0].numel())
        patches = self._patches(x, positions).view(
            len(positions), self.groups, weight.shape[-1])
        counts = torch.bincount(
            self._sample_of(x, positions), minlength=batch).tolist()
        out = torch.cat([
            torch.einsum('mgi,goi->mgo', sample_patches, sample_weight)
            for sample_patches, sample_weight in zip(
                patches.split(counts), weight)
        ]).reshape(len(positions), self.out_channels)
        if self.bias is not None:
            out = out + self.bias
        return out

    def _output_size(self, x: Tensor) -> Tuple[int, int]:
        return tuple(
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip(
                x.shape[2:], self.padding, self.dilation, self.kernel_size,
                self.stride))

    def _sample_of(self, x: Tensor, positions: Tensor) -> Tensor:
        height, width = self._output_size(x)
        return torch.div(positions, height * width, rounding_mode='floor')

    def _patches(self, x: Tensor, positions: Tensor) -> Tensor:
        """The input patches ``(M, in_channels * k * k)`` (channel-major,
        :func:`F.unfold`'s order) of flat output ``positions``, gathered
        from the padded input without unfolding the whole map."""
        (pad_h, pad_w), (dil_h, dil_w) = self.padding, self.dilation
        padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
        padded_width = padded.shape[-1]
        height, width = self._output_size(x)
        within = positions % (height * width)
        rows = torch.div(within, width, rounding_mode='floor') * \
            self.stride[0]
        cols = within % width * self.stride[1]
        size = self.kernel_size[0]
        offsets = torch.arange(size, device=x.device)
        taps = ((rows[:, None, None] + dil_h * offsets[:, None]) *
                padded_width + cols[:, None, None] +
                dil_w * offsets).flatten(1)  # (M, k * k)
        flat = padded.flatten(2).transpose(1, 2)  # (B, H_p * W_p, C)
        patches = flat[self._sample_of(x, positions)[:, None], taps]
        return patches.transpose(1, 2).reshape(len(positions),
                                               x.shape[1] * size * size)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, '
                f'groups={self.groups}, bias={self.bias is not None}, '
                f'num_base_kernels={self.num_base_kernels}, '
                f'num_triangular_kernels={self.num_triangular_kernels}, '
                f'angles={self.angles}, num_kernels={self.num_kernels}')
