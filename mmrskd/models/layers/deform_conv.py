"""Deformable convolution (DCNv1) in plain PyTorch: bilinear sampling with
``F.grid_sample``, then one matrix product with the kernel."""
from typing import Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


def deform_conv2d(x: Tensor,
                  offset: Tensor,
                  weight: Tensor,
                  stride: Union[int, Tuple[int, int]] = 1,
                  padding: Union[int, Tuple[int, int]] = 0,
                  dilation: Union[int, Tuple[int, int]] = 1,
                  groups: int = 1,
                  deform_groups: int = 1,
                  with_cp: bool = False) -> Tensor:
    """mmcv's ``deform_conv2d`` (no bias) as differentiable torch ops.

    Kernel tap ``k = i * kw + j`` of output position ``(y, x)`` reads the
    input at ``(y * s - p + i * d + dy_k, x * s - p + j * d + dx_k)``,
    bilinearly, zero outside the image; ``(dy_k, dx_k)`` are channels ``2k``
    and ``2k + 1`` of ``offset`` (mmcv's layout ``[y0, x0, y1, x1, ...]``,
    repeated per deformable group).

    Args:
        x (Tensor): ``(N, C_in, H, W)``.
        offset (Tensor): ``(N, deform_groups * 2 * kh * kw, H_out,
            W_out)``.
        weight (Tensor): ``(C_out, C_in // groups, kh, kw)``.
        stride, padding, dilation: as in ``nn.Conv2d``.
        groups (int): convolution groups.
        deform_groups (int): groups of input channels with their own
            offsets.
        with_cp (bool): one checkpointed product per kernel tap: the
            backward keeps only ``x`` and the sampling grid and resamples
            each tap, instead of holding all ``C_in * kh * kw`` sampled
            columns and their gradient at once. Same values; more time.

    Returns:
        Tensor: ``(N, C_out, H_out, W_out)``. The sampling runs in at least
        fp32 (sub-pixel positions need it); the product with the kernel
        follows autocast.

    Note:
        Outputs and the gradients of ``x`` and ``weight`` equal mmcv's (to
        float rounding); so do the gradients of ``offset``, except where a
        tap lands exactly on an integer row or column (e.g. offsets that
        are exactly 0 or whole pixels), where bilinear interpolation has no
        derivative: mmcv takes the one-sided difference towards the next
        pixel, here the side follows the rounding of ``grid_sample``'s
        normalisation.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), \
        _pair(dilation)
    num, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    taps = kh * kw
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if offset.shape != (num, deform_groups * 2 * taps, out_h, out_w):
        raise MMRSKDError(
            f'deform_conv2d: offset {tuple(offset.shape)} does not match '
            f'(N, deform_groups * 2 * kh * kw, H_out, W_out) = '
            f'{(num, deform_groups * 2 * taps, out_h, out_w)}')
    dtype = torch.promote_types(x.dtype, torch.float32)
    # sampling positions (N * G, taps, H_out, W_out) in input pixels
    rows = torch.arange(kh, device=x.device, dtype=dtype)[:, None] * dh + (
        torch.arange(out_h, device=x.device, dtype=dtype) * sh - ph)
    cols = torch.arange(kw, device=x.device, dtype=dtype)[:, None] * dw + (
        torch.arange(out_w, device=x.device, dtype=dtype) * sw - pw)
    offset = offset.to(dtype).reshape(num * deform_groups, taps, 2, out_h,
                                      out_w)
    pos_y = rows.repeat_interleave(kw, 0)[:, :, None] + offset[:, :, 0]
    pos_x = cols.repeat(kh, 1)[:, None, :] + offset[:, :, 1]
    # grid_sample's align_corners=False normalisation of pixel positions
    # (valid for any size, 1 included); zeros padding = mmcv's zero outside
    grid = torch.stack([(2 * pos_x + 1) / width - 1,
                        (2 * pos_y + 1) / height - 1], dim=-1)
    inputs = x.to(dtype).reshape(num * deform_groups,
                                 channels // deform_groups, height, width)
    grid = grid.reshape(num * deform_groups, taps, out_h, out_w, 2)
    kernel = weight.to(dtype).reshape(groups, out_channels // groups, -1)
    if not with_cp:
        return _tap_product(inputs, grid, kernel, num, groups).reshape(
            num, out_channels, out_h, out_w)
    # the kernel's columns are channel-major: tap k of channel c is c*taps+k
    kernel = kernel.reshape(groups, out_channels // groups, -1, taps)
    out = sum(
        cp.checkpoint(_tap_product, inputs, grid[:, tap:tap + 1],
                      kernel[..., tap], num, groups, use_reentrant=False)
        for tap in range(taps))
    return out.reshape(num, out_channels, out_h, out_w)


def _tap_product(inputs: Tensor, grid: Tensor, kernel: Tensor, num: int,
                 groups: int) -> Tensor:
    """The kernel times the bilinear samples of ``inputs`` ``(N * G, C_in /
    G, H, W)`` at ``grid`` ``(N * G, taps, H_out, W_out, 2)``: ``kernel``
    ``(groups, C_out / groups, C_in / groups * taps)`` to ``(N, groups,
    C_out / groups, H_out * W_out)``."""
    rows, taps, out_h, out_w, _ = grid.shape
    sampled = F.grid_sample(
        inputs, grid.reshape(rows, taps * out_h, out_w, 2), mode='bilinear',
        padding_mode='zeros', align_corners=False)
    # channel-major columns, like the flattened kernel
    sampled = sampled.reshape(num, groups, -1, out_h * out_w)
    return torch.matmul(kernel, sampled)


@MODELS.register_module()
class GridSampleDeformConv2d(nn.Module):
    """Drop-in for mmcv's ``DeformConv2d`` in plain PyTorch.

    Same arguments, parameter (``weight`` ``(out_channels, in_channels //
    groups, kh, kw)``, no bias), initialisation (uniform Kaiming, ReLU gain)
    and outputs as mmcv's op (see :func:`deform_conv2d`), so checkpoints of
    either load into the other. Every sampled tap is gathered with one
    ``F.grid_sample`` and the kernel applied with one matrix product; on the
    CPU the forward and backward of LTD's LIC levels run about 8x faster
    than mmcv's CPU kernels (whose backward dominates), and it needs no
    compiled ops.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int | tuple[int, int]): kernel size.
        stride, padding, dilation: as in ``nn.Conv2d``. Defaults to 1, 0,
            1.
        groups (int): convolution groups. Defaults to 1.
        deform_groups (int): input channel groups with their own offsets.
            Defaults to 1.
        bias (bool): must be False, as in mmcv.
        with_cp (bool): checkpoint each kernel tap (see
            :func:`deform_conv2d`). Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding: Union[int, Tuple[int, int]] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 deform_groups: int = 1,
                 bias: bool = False,
                 with_cp: bool = False):
        super().__init__()
        name = type(self).__name__
        if bias:
            raise MMRSKDError(f'{name}: bias is not supported (as in mmcv)')
        if in_channels % groups or out_channels % groups:
            raise MMRSKDError(
                f'{name}: in_channels={in_channels} and out_channels='
                f'{out_channels} must be divisible by groups={groups}')
        if in_channels % deform_groups:
            raise MMRSKDError(
                f'{name}: in_channels={in_channels} must be divisible by '
                f'deform_groups={deform_groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.with_cp = with_cp
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups,
                        *self.kernel_size))
        self.reset_parameters()

    def reset_parameters(self):
        """mmcv's initialisation: uniform Kaiming with the ReLU gain."""
        nn.init.kaiming_uniform_(self.weight, a=0, nonlinearity='relu')

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        """``x`` ``(N, in_channels, H, W)`` and ``offset`` ``(N,
        deform_groups * 2 * kh * kw, H_out, W_out)`` to ``(N, out_channels,
        H_out, W_out)``."""
        return deform_conv2d(x, offset, self.weight, self.stride,
                             self.padding, self.dilation, self.groups,
                             self.deform_groups,
                             self.with_cp and torch.is_grad_enabled())

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size='
                f'{self.kernel_size}, stride={self.stride}, padding='
                f'{self.padding}, dilation={self.dilation}, groups='
                f'{self.groups}, deform_groups={self.deform_groups}')
