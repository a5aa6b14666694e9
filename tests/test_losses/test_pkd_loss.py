import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrskd.models.losses import PKDLoss
from mmrskd.utils import MMRSKDError


def reference_pkd(levels_S, levels_T, per_sample):
    """Sum over levels of the mean over channel maps of 1 - Pearson r."""
    total = 0.0
    for S, T in zip(levels_S, levels_T):
        N, C = S.shape[:2]
        if per_sample:
            r = [np.corrcoef(S[n, c].ravel(), T[n, c].ravel())[0, 1]
                 for n in range(N) for c in range(C)]
        else:
            r = [np.corrcoef(S[:, c].ravel(), T[:, c].ravel())[0, 1]
                 for c in range(C)]
        total += 1 - np.mean(r)
    return total


@pytest.mark.parametrize('per_sample', [True, False])
def test_equals_one_minus_pearson_correlation(per_sample):
    rng = np.random.default_rng(4)
    sizes = [(2, 3, 4, 5), (2, 3, 2, 3)]
    levels_T = [rng.normal(size=s) for s in sizes]
    # correlated student with a different scale and offset
    levels_S = [5 * t + rng.normal(size=t.shape) + 3 for t in levels_T]
    loss = PKDLoss(per_sample_norm=per_sample, eps=1e-12)(
        [torch.tensor(x, dtype=torch.float32) for x in levels_S],
        [torch.tensor(x, dtype=torch.float32) for x in levels_T])
    expected = reference_pkd(levels_S, levels_T, per_sample)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_hand_computed_anticorrelated_maps():
    # r = -1 for reversed maps, so the loss is 1 - r = 2 (up to eps)
    pred_S = torch.tensor([1., 2., 3., 4.]).view(1, 1, 2, 2)
    pred_T = torch.tensor([4., 3., 2., 1.]).view(1, 1, 2, 2)
    assert PKDLoss()(pred_S, pred_T).item() == pytest.approx(2.0, abs=1e-5)
    # invariant to the student's scale and offset: r = 1
    assert PKDLoss()(10 * pred_T - 7, pred_T).item() == pytest.approx(
        0.0, abs=1e-5)


def test_per_sample_norm_ignores_other_images():
    torch.manual_seed(0)
    pred_S, pred_T = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3)
    alone = PKDLoss()(pred_S, pred_T)
    # a second, identical-to-teacher image with a huge offset
    batch_S = torch.cat([pred_S, pred_T + 100])
    batch_T = torch.cat([pred_T, pred_T])
    torch.testing.assert_close(
        PKDLoss()(batch_S, batch_T), alone / 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('resize_stu', [True, False])
def test_spatial_sizes_are_aligned_by_bilinear_resizing(resize_stu):
    torch.manual_seed(0)
    small, large = torch.randn(2, 3, 2, 3), torch.randn(2, 3, 4, 6)
    loss = PKDLoss(resize_stu=resize_stu)(small, large)
    if resize_stu:
        expected = PKDLoss()(
            F.interpolate(small, (4, 6), mode='bilinear'), large)
    else:
        expected = PKDLoss()(small,
                             F.interpolate(large, (2, 3), mode='bilinear'))
    torch.testing.assert_close(loss, expected)


def test_constant_maps_stay_finite():
    pred_S = torch.ones(1, 2, 3, 3, requires_grad=True)
    loss = PKDLoss()(pred_S, torch.randn(1, 2, 3, 3))
    loss.backward()
    # a constant map standardises to zeros: loss = mean(z_T**2) / 2 = 1/2
    assert loss.item() == pytest.approx(0.5, abs=1e-4)
    assert torch.isfinite(pred_S.grad).all()


def test_mismatched_channels_raise():
    with pytest.raises(MMRSKDError, match='same N and C'):
        PKDLoss()(torch.randn(1, 2, 3, 3), torch.randn(1, 3, 3, 3))
