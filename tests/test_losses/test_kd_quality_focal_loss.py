import math

import numpy as np
import pytest
import torch

from mmrskd.models.losses import KDQualityFocalLoss
from mmrskd.utils import MMRSKDError


def reference_kd_qfl(S, T, beta, weight=None, avg_factor=None):
    """S, T: (M, C) logits in float64; explicit loops."""
    rows = []
    for m in range(S.shape[0]):
        row = 0.0
        for c in range(S.shape[1]):
            sigma = 1 / (1 + math.exp(-S[m, c]))
            y = 1 / (1 + math.exp(-T[m, c]))
            bce = -(y * math.log(sigma) + (1 - y) * math.log(1 - sigma))
            row += abs(y - sigma)**beta * bce
        rows.append(row * (1.0 if weight is None else weight[m]))
    if avg_factor is None:
        return float(np.mean(rows))
    return float(np.sum(rows)) / avg_factor


@pytest.mark.parametrize('beta', [1.0, 2.0])
@pytest.mark.parametrize('weighted', [False, True])
def test_matches_loop_reference(beta, weighted):
    rng = np.random.default_rng(6)
    S, T = rng.normal(size=(8, 4)) * 3, rng.normal(size=(8, 4)) * 3
    weight = rng.random(8) if weighted else None
    avg_factor = 3.0 if weighted else None
    loss = KDQualityFocalLoss(beta=beta)(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32),
        weight=None if weight is None else torch.tensor(
            weight, dtype=torch.float32),
        avg_factor=avg_factor)
    assert loss.item() == pytest.approx(
        reference_kd_qfl(S, T, beta, weight, avg_factor), rel=1e-5)


def test_dense_logits_sum_over_classes_per_position():
    rng = np.random.default_rng(7)
    S, T = rng.normal(size=(2, 3, 2, 2)), rng.normal(size=(2, 3, 2, 2))
    loss = KDQualityFocalLoss()(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32))
    rows = lambda x: x.transpose(0, 2, 3, 1).reshape(-1, 3)  # noqa: E731
    assert loss.item() == pytest.approx(
        reference_kd_qfl(rows(S), rows(T), 1.0), rel=1e-5)


def test_hand_computed_value():
    # student sigmoid 0.5, teacher 0.75: BCE = ln 2, factor |0.75 - 0.5|
    loss = KDQualityFocalLoss()(
        torch.tensor([[0.]]), torch.tensor([[math.log(3.)]]))
    assert loss.item() == pytest.approx(0.25 * math.log(2), abs=1e-6)
    loss = KDQualityFocalLoss(beta=2.0)(
        torch.tensor([[0.]]), torch.tensor([[math.log(3.)]]))
    assert loss.item() == pytest.approx(0.0625 * math.log(2), abs=1e-6)


def test_matching_teacher_gives_zero_loss_and_finite_grad():
    pred_S = torch.tensor([[0.3, -2.0]], requires_grad=True)
    loss = KDQualityFocalLoss(beta=0.5)(pred_S, pred_S.detach().clone())
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-5)
    assert torch.isfinite(pred_S.grad).all()


def test_bad_beta_raises():
    with pytest.raises(MMRSKDError, match='beta=0'):
        KDQualityFocalLoss(beta=0)
