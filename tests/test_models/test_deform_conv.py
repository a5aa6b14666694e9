"""GridSampleDeformConv2d (plain PyTorch) against mmcv's DeformConv2d, the
reference it replaces in LTD's LIC."""
import pytest
import torch
import torch.nn.functional as F

import mmrskd  # noqa: F401  (compat layer before mmcv ops)
from mmcv.ops import DeformConv2d

from mmrskd.models.layers import GridSampleDeformConv2d
from mmrskd.registry import MODELS
from mmrskd.testing import peak_bytes
from mmrskd.utils import MMRSKDError

# N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups,
# deform_groups
CASES = [
    # LIC on the narrow GFL pair at 256 px (32 channels, P3 and P7: the
    # 2x2 level is smaller than the kernel, which mmcv pads)
    (2, 32, 32, 32, 32, 3, 1, 1, 1, 1, 1),
    (2, 32, 32, 2, 2, 3, 1, 1, 1, 1, 1),
    (1, 4, 3, 1, 5, 3, 1, 1, 1, 1, 1),
    (2, 8, 6, 7, 9, 3, 2, 1, 2, 2, 2),
    (3, 6, 4, 10, 6, (3, 1), 1, (1, 0), 1, 1, 3),
    (1, 5, 2, 8, 8, 5, 1, 0, 1, 1, 1),
]


def pair(case, seed=0):
    n, c_in, c_out, h, w, kernel, stride, padding, dilation, groups, \
        deform_groups = case
    args = (c_in, c_out, kernel, stride, padding, dilation, groups,
            deform_groups)
    torch.manual_seed(seed)
    reference = DeformConv2d(*args)
    torch.manual_seed(seed)
    ours = GridSampleDeformConv2d(*args)
    return reference, ours


def inputs(case, ours, seed=1):
    n, c_in, _, h, w = case[:5]
    gen = torch.Generator().manual_seed(seed)
    kh, kw = ours.kernel_size
    out_h = (h + 2 * ours.padding[0] - ours.dilation[0] *
             (kh - 1) - 1) // ours.stride[0] + 1
    out_w = (w + 2 * ours.padding[1] - ours.dilation[1] *
             (kw - 1) - 1) // ours.stride[1] + 1
    x = torch.randn(n, c_in, h, w, generator=gen)
    # offsets of a few pixels: taps land between pixels and outside the map
    offset = 2 * torch.randn(n, ours.deform_groups * 2 * kh * kw, out_h,
                             out_w, generator=gen)
    return x, offset


def forward_backward(module, x, offset):
    x = x.clone().requires_grad_()
    offset = offset.clone().requires_grad_()
    module.weight.grad = None
    out = module(x, offset)
    grad_out = torch.randn(out.shape,
                           generator=torch.Generator().manual_seed(2))
    (out * grad_out).sum().backward()
    return out, x.grad, offset.grad, module.weight.grad


@pytest.mark.parametrize('case', CASES)
def test_matches_mmcv_outputs_and_gradients(case):
    reference, ours = pair(case)
    # same parameter and initialisation (uniform Kaiming, ReLU gain)
    assert torch.equal(ours.weight, reference.weight)
    x, offset = inputs(case, ours)
    expected = forward_backward(reference, x, offset)
    actual = forward_backward(ours, x, offset)
    for name, a, e in zip(('output', 'input grad', 'offset grad',
                           'weight grad'), actual, expected):
        assert a.shape == e.shape, name
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize('case', CASES)
def test_with_cp_gives_the_same_outputs_and_gradients(case):
    _, plain = pair(case)
    _, checkpointed = pair(case)
    checkpointed.with_cp = True
    x, offset = inputs(case, plain)
    expected = forward_backward(plain, x, offset)
    actual = forward_backward(checkpointed, x, offset)
    for name, a, e in zip(('output', 'input grad', 'offset grad',
                           'weight grad'), actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5, msg=name)


def test_with_cp_never_holds_all_sampled_columns():
    case = CASES[0]
    _, conv = pair(case)
    x, offset = inputs(case, conv)
    x.requires_grad_()
    # (N, C_in * 9, H * W) fp32: the columns of every tap at once
    columns = 2 * 32 * 9 * 32 * 32 * 4
    peaks = {}
    for with_cp in (False, True):
        conv.with_cp = with_cp
        peaks[with_cp] = peak_bytes(
            lambda: conv(x, offset).sum().backward())
    # without: the columns are kept for the backward, then their gradient
    assert peaks[False] > 2 * columns
    # with: one tap's columns and gradient at a time, besides x and grid
    assert peaks[True] < columns


def test_zero_offsets_are_the_plain_convolution():
    torch.manual_seed(0)
    conv = GridSampleDeformConv2d(3, 4, 3, stride=2, padding=1, dilation=2)
    x = torch.randn(2, 3, 9, 8)
    out = conv(x, torch.zeros(2, 18, 4, 3))
    torch.testing.assert_close(
        out, F.conv2d(x, conv.weight, stride=2, padding=1, dilation=2),
        rtol=1e-5, atol=1e-5)


def test_checkpoints_load_both_ways_and_config_builds():
    reference, ours = pair(CASES[0])
    built = MODELS.build(
        dict(type='GridSampleDeformConv2d', in_channels=32,
             out_channels=32, kernel_size=3, padding=1))
    built.load_state_dict(reference.state_dict())
    reference.load_state_dict(ours.state_dict())
    assert set(built.state_dict()) == {'weight'}


def test_errors_are_one_line():
    with pytest.raises(MMRSKDError, match='bias'):
        GridSampleDeformConv2d(4, 4, 3, bias=True)
    with pytest.raises(MMRSKDError, match='groups'):
        GridSampleDeformConv2d(4, 6, 3, groups=4)
    with pytest.raises(MMRSKDError, match='deform_groups'):
        GridSampleDeformConv2d(4, 4, 3, deform_groups=3)
    conv = GridSampleDeformConv2d(4, 4, 3, padding=1)
    with pytest.raises(MMRSKDError, match='offset') as error:
        conv(torch.zeros(1, 4, 5, 5), torch.zeros(1, 9, 5, 5))
    assert '\n' not in str(error.value)
