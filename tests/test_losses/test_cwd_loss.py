import math

import numpy as np
import pytest
import torch

from mmrskd.models.losses import CWDLoss
from mmrskd.utils import MMRSKDError


def reference_cwd(levels_S, levels_T, tau):
    total = 0.0
    for S, T in zip(levels_S, levels_T):
        N, C = S.shape[:2]
        level = 0.0
        for n in range(N):
            for c in range(C):
                s, t = S[n, c].ravel() / tau, T[n, c].ravel() / tau
                p_S, p_T = np.exp(s) / np.exp(s).sum(), np.exp(t) / np.exp(
                    t).sum()
                level += np.sum(p_T * np.log(p_T / p_S))
        total += tau**2 * level / (N * C)
    return total


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_loop_reference(tau):
    rng = np.random.default_rng(5)
    sizes = [(2, 3, 4, 5), (2, 3, 2, 3)]
    levels_S = [rng.normal(size=s) * 2 for s in sizes]
    levels_T = [rng.normal(size=s) * 2 for s in sizes]
    loss = CWDLoss(tau=tau)(
        [torch.tensor(x, dtype=torch.float32) for x in levels_S],
        [torch.tensor(x, dtype=torch.float32) for x in levels_T])
    assert loss.item() == pytest.approx(
        reference_cwd(levels_S, levels_T, tau), rel=1e-5)


def test_hand_computed_value():
    # one channel over 2 positions: teacher (0.75, 0.25), student uniform
    pred_S = torch.zeros(1, 1, 1, 2)
    pred_T = torch.tensor([math.log(3.), 0.]).view(1, 1, 1, 2)
    assert CWDLoss()(pred_S, pred_T).item() == pytest.approx(
        0.1308121, abs=1e-6)
    # tau = 2 on doubled logits: same distributions, times tau**2
    assert CWDLoss(tau=2.0)(2 * pred_S, 2 * pred_T).item() == pytest.approx(
        4 * 0.1308121, abs=1e-5)
    # averaged over N * C maps: a second, perfectly matched map halves it
    pred_S2 = torch.cat([pred_S, pred_T], 1)
    pred_T2 = torch.cat([pred_T, pred_T], 1)
    assert CWDLoss()(pred_S2, pred_T2).item() == pytest.approx(
        0.1308121 / 2, abs=1e-6)


def test_bad_tau_raises():
    with pytest.raises(MMRSKDError, match='tau=-1'):
        CWDLoss(tau=-1)
