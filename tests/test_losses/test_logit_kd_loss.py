import math

import numpy as np
import pytest
import torch
from mmdet.models.losses import KnowledgeDistillationKLDivLoss

from mmrskd.models.losses import LogitKDLoss
from mmrskd.utils import MMRSKDError


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def reference_logit_kd(S, T, mode, temp, class_reduction, weight=None,
                       avg_factor=None):
    """Loops over rows of (N, C) logits in float64."""
    per_row = []
    for n in range(S.shape[0]):
        if mode == 'softmax':
            p_T, p_S = softmax(T[n] / temp), softmax(S[n] / temp)
            terms = p_T * np.log(p_T / p_S)
        else:
            terms = []
            for c in range(S.shape[1]):
                t, s = sigmoid(T[n, c] / temp), sigmoid(S[n, c] / temp)
                terms.append(t * math.log(t / s) +
                             (1 - t) * math.log((1 - t) / (1 - s)))
            terms = np.array(terms)
        terms = terms * temp**2
        row = terms.mean() if class_reduction == 'mean' else terms.sum()
        per_row.append(row * (1.0 if weight is None else weight[n]))
    if avg_factor is None:
        return float(np.mean(per_row))
    return float(np.sum(per_row)) / avg_factor


@pytest.mark.parametrize('mode', ['softmax', 'sigmoid'])
@pytest.mark.parametrize('class_reduction', ['mean', 'sum'])
@pytest.mark.parametrize('weighted', [False, True])
def test_matches_loop_reference(mode, class_reduction, weighted):
    rng = np.random.default_rng(1)
    S, T = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)) * 3
    weight = rng.random(6) if weighted else None
    avg_factor = 2.5 if weighted else None
    loss = LogitKDLoss(mode=mode, T=2.0, class_reduction=class_reduction)(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32),
        weight=None if weight is None else torch.tensor(
            weight, dtype=torch.float32),
        avg_factor=avg_factor)
    expected = reference_logit_kd(S, T, mode, 2.0, class_reduction, weight,
                                  avg_factor)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_dense_logits_reduce_over_dim_one():
    rng = np.random.default_rng(2)
    S, T = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(2, 4, 3, 3))
    weight = rng.random((2, 3, 3))
    loss = LogitKDLoss(mode='sigmoid', class_reduction='sum')(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32),
        weight=torch.tensor(weight, dtype=torch.float32)[:, None],
        avg_factor=4.0)
    rows = lambda x: x.transpose(0, 2, 3, 1).reshape(-1, 4)  # noqa: E731
    expected = reference_logit_kd(rows(S), rows(T), 'sigmoid', 1.0, 'sum',
                                  weight.reshape(-1), 4.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_hand_computed_two_class_kl():
    # teacher (0.75, 0.25), student (0.5, 0.5):
    # 0.75 ln 1.5 + 0.25 ln 0.5 = 0.1308121
    pred_S = torch.tensor([[0., 0.]])
    pred_T = torch.tensor([[math.log(3.), 0.]])
    loss = LogitKDLoss(class_reduction='sum')
    assert loss(pred_S, pred_T).item() == pytest.approx(0.1308121, abs=1e-6)
    assert LogitKDLoss()(pred_S, pred_T).item() == pytest.approx(
        0.1308121 / 2, abs=1e-6)
    # T = 2 with doubled logits gives the same distributions, times T**2
    loss = LogitKDLoss(T=2.0, class_reduction='sum')
    assert loss(2 * pred_S, 2 * pred_T).item() == pytest.approx(
        4 * 0.1308121, abs=1e-5)


def test_hand_computed_binary_kl():
    # teacher sigmoid 0.5, student sigmoid 0.75:
    # 0.5 ln(0.5 / 0.75) + 0.5 ln(0.5 / 0.25) = 0.1438410
    loss = LogitKDLoss(mode='sigmoid')(
        torch.tensor([[math.log(3.)]]), torch.tensor([[0.]]))
    assert loss.item() == pytest.approx(0.1438410, abs=1e-6)


def test_saturated_teacher_gives_cross_entropy():
    # a one-hot teacher reduces KL to -log p_S(class 0) = ln 2
    loss = LogitKDLoss(class_reduction='sum')(
        torch.zeros(1, 2), torch.tensor([[1e4, -1e4]]))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    loss = LogitKDLoss(mode='sigmoid')(
        torch.zeros(1, 1), torch.tensor([[1e4]]))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)


def test_softmax_mean_equals_mmdet_kd_loss():
    torch.manual_seed(0)
    S, T = torch.randn(7, 5), torch.randn(7, 5)
    weight = torch.rand(7)
    ours = LogitKDLoss(T=3.0)(S, T, weight=weight, avg_factor=2.0)
    mmdet = KnowledgeDistillationKLDivLoss(T=3)(
        S, T, weight=weight, avg_factor=2.0)
    torch.testing.assert_close(ours, mmdet, rtol=1e-5, atol=1e-7)


def test_bad_options_and_weights_raise():
    with pytest.raises(MMRSKDError, match="mode='softmax2'"):
        LogitKDLoss(mode='softmax2')
    with pytest.raises(MMRSKDError, match='class_reduction'):
        LogitKDLoss(class_reduction='max')
    with pytest.raises(MMRSKDError, match='T=0'):
        LogitKDLoss(T=0)
    with pytest.raises(MMRSKDError, match='weight of shape'):
        LogitKDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4),
                      weight=torch.rand(2))
