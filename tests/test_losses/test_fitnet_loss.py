import numpy as np
import pytest
import torch

from mmrskd.models.losses import FitNetLoss
from mmrskd.utils import MMRSKDError


def reference_fitnet(levels_S, levels_T, masks, normalize):
    """Explicit loops over (n, c, h, w) in float64."""
    total = 0.0
    for S, T, M in zip(levels_S, levels_T, masks):
        N, C, H, W = S.shape
        numerator = denominator = 0.0
        for n in range(N):
            for c in range(C):
                for h in range(H):
                    for w in range(W):
                        m = 1.0 if M is None else float(M[n, 0, h, w])
                        numerator += m * (float(S[n, c, h, w]) -
                                          float(T[n, c, h, w]))**2
                        denominator += m
        total += numerator / (denominator if normalize == 'level' else N)
    return total


@pytest.mark.parametrize('normalize', ['none', 'level'])
@pytest.mark.parametrize('with_mask', [False, True])
def test_matches_loop_reference(normalize, with_mask):
    rng = np.random.default_rng(0)
    sizes = [(2, 3, 4, 5), (2, 3, 2, 3)]
    levels_S = [rng.normal(size=s) for s in sizes]
    levels_T = [rng.normal(size=s) for s in sizes]
    masks = [rng.random((s[0], 1, s[2], s[3])) if with_mask else None
             for s in sizes]
    loss = FitNetLoss(normalize=normalize)(
        [torch.tensor(x, dtype=torch.float32) for x in levels_S],
        [torch.tensor(x, dtype=torch.float32) for x in levels_T],
        mask=[torch.tensor(m, dtype=torch.float32)
              for m in masks] if with_mask else None)
    expected = reference_fitnet(levels_S, levels_T, masks, normalize)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_hand_computed_values():
    pred_S = torch.tensor([1., 2.]).view(1, 1, 1, 2)
    pred_T = torch.zeros(1, 1, 1, 2)
    # squared errors 1 and 4
    assert FitNetLoss()(pred_S, pred_T).item() == pytest.approx(5.0)
    assert FitNetLoss(normalize='level')(pred_S,
                                         pred_T).item() == pytest.approx(2.5)
    mask = torch.tensor([0.5, 1.]).view(1, 1, 2)  # (N, H, W) form
    # 0.5 * 1 + 1 * 4 = 4.5, mask total 1.5
    assert FitNetLoss()(pred_S, pred_T,
                        mask=mask).item() == pytest.approx(4.5)
    assert FitNetLoss(normalize='level')(
        pred_S, pred_T, mask=mask).item() == pytest.approx(3.0)


def test_large_levels_do_not_dominate_with_level_normalisation():
    small_S, small_T = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    large_S, large_T = torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    loss = FitNetLoss(normalize='level')
    # each level contributes its mean squared error, 1
    assert loss([small_S, large_S],
                [small_T, large_T]).item() == pytest.approx(2.0)
    assert FitNetLoss()([small_S, large_S],
                        [small_T, large_T]).item() == pytest.approx(68.0)


def test_zero_mask_gives_zero_loss():
    loss = FitNetLoss(normalize='level')(
        torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4),
        mask=torch.zeros(2, 1, 4, 4))
    assert loss.item() == 0


def test_bad_options_and_masks_raise():
    with pytest.raises(MMRSKDError, match="normalize='mean'"):
        FitNetLoss(normalize='mean')
    with pytest.raises(MMRSKDError, match='mask of shape'):
        FitNetLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4),
                     mask=torch.ones(2, 1, 2, 2))
    with pytest.raises(MMRSKDError, match='mask has 1 levels'):
        FitNetLoss()([torch.randn(1, 1, 2, 2)] * 2,
                     [torch.randn(1, 1, 2, 2)] * 2,
                     mask=torch.ones(1, 1, 2, 2))
