import math

import numpy as np
import pytest
import torch
from mmdet.models.losses import KnowledgeDistillationKLDivLoss

from mmrskd.models.losses import LDLoss
from mmrskd.utils import MMRSKDError

REG_MAX = 3
BINS = REG_MAX + 1


def reference_ld(S, T, temp, class_reduction, box_weight=None,
                 avg_factor=None):
    """S, T: (M, 4, bins) float64; box_weight: (M,). Explicit loops."""
    total, count = 0.0, 0
    for m in range(S.shape[0]):
        for side in range(4):
            p_T = np.exp(T[m, side] / temp) / np.exp(T[m, side] / temp).sum()
            p_S = np.exp(S[m, side] / temp) / np.exp(S[m, side] / temp).sum()
            terms = p_T * np.log(p_T / p_S) * temp**2
            value = terms.mean() if class_reduction == 'mean' else terms.sum()
            total += value * (1.0 if box_weight is None else box_weight[m])
            count += 1
    return total / (count if avg_factor is None else avg_factor)


@pytest.mark.parametrize('class_reduction', ['mean', 'sum'])
def test_all_layouts_match_loop_reference(class_reduction):
    rng = np.random.default_rng(3)
    N, H, W = 2, 2, 3
    S = rng.normal(size=(N * H * W, 4, BINS)) * 5
    T = rng.normal(size=(N * H * W, 4, BINS)) * 5
    box_weight = rng.random(N * H * W)
    expected = reference_ld(S, T, 10.0, class_reduction, box_weight, 3.0)
    loss = LDLoss(reg_max=REG_MAX, class_reduction=class_reduction)
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731

    per_box = loss(f32(S.reshape(-1, 4 * BINS)), f32(T.reshape(-1, 4 * BINS)),
                   weight=f32(box_weight), avg_factor=3.0)
    per_side = loss(f32(S.reshape(-1, BINS)), f32(T.reshape(-1, BINS)),
                    weight=f32(box_weight).repeat_interleave(4),
                    avg_factor=3.0)
    # dense GFL bbox_pred: (N, 4 * bins, H, W) with positions row-major
    dense = lambda x: f32(x.reshape(N, H, W, 4 * BINS)).permute(  # noqa
        0, 3, 1, 2)
    dense_loss = loss(dense(S), dense(T),
                      weight=f32(box_weight.reshape(N, 1, H, W)),
                      avg_factor=3.0)
    for value in (per_box, per_side, dense_loss):
        assert value.item() == pytest.approx(expected, rel=1e-5)


def test_hand_computed_value():
    # with T = 10, logits (10 ln 3, 0) soften to (0.75, 0.25); student
    # (0.5, 0.5): KL = 0.1308121, times T**2 = 100, mean over 2 bins
    pred_S = torch.zeros(1, 2)
    pred_T = torch.tensor([[10 * math.log(3.), 0.]])
    assert LDLoss(reg_max=1)(pred_S, pred_T).item() == pytest.approx(
        13.08121 / 2, rel=1e-5)


def test_equals_mmdet_ld_head_usage():
    # mmdet's LDHead: KnowledgeDistillationKLDivLoss(T=10) on (M * 4, bins)
    # rows, each box's weight repeated for its sides, avg_factor=4
    torch.manual_seed(0)
    S, T = torch.randn(5 * 4, 17) * 3, torch.randn(5 * 4, 17) * 3
    box_weight = torch.rand(5)
    side_weight = box_weight[:, None].expand(-1, 4).reshape(-1)
    mmdet = KnowledgeDistillationKLDivLoss(T=10, loss_weight=0.25)(
        S, T, weight=side_weight, avg_factor=4.0)
    ours = LDLoss(loss_weight=0.25)(
        S.reshape(5, 4 * 17), T.reshape(5, 4 * 17), weight=box_weight,
        avg_factor=4.0)
    torch.testing.assert_close(ours, mmdet, rtol=1e-5, atol=1e-7)


def test_bad_layouts_and_weights_raise():
    loss = LDLoss(reg_max=REG_MAX)
    with pytest.raises(MMRSKDError, match='reg_max=3'):
        loss(torch.randn(2, 17), torch.randn(2, 17))
    with pytest.raises(MMRSKDError, match='weight has 3 entries'):
        loss(torch.randn(2, 4 * BINS), torch.randn(2, 4 * BINS),
             weight=torch.rand(3))
    with pytest.raises(MMRSKDError, match='weight'):
        loss(torch.randn(2, 4 * BINS, 2, 3), torch.randn(2, 4 * BINS, 2, 3),
             weight=torch.rand(2, 3, 2))
