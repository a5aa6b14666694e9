import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.models.losses import FGDLoss
from mmrskd.models.utils import rasterize_gt_boxes
from mmrskd.utils import MMRSKDError

WEIGHTS = dict(alpha_fg=0.7, beta_bg=0.3, gamma_attention=0.2,
               lambda_global=0.05)


def gt(boxes):
    return InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


def hbox_fg_mask(boxes, feat_h, feat_w, stride):
    """FGD's scale mask for horizontal boxes, by explicit cell loops."""
    mask = np.zeros((feat_h, feat_w))
    for x1, y1, x2, y2 in boxes:
        cells = [(i, j) for i in range(feat_h) for j in range(feat_w)
                 if x1 <= (j + 0.5) * stride <= x2
                 and y1 <= (i + 0.5) * stride <= y2]
        for i, j in cells:
            mask[i, j] = max(mask[i, j], 1 / len(cells))
    return mask


def np_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_context_block(block, x):
    """GCNet context block (attention pooling + channel-add), in numpy."""
    p = {k: v.detach().double().numpy() for k, v in block.state_dict().items()}
    C, H, W = x.shape
    flat = x.reshape(C, H * W)
    logits = p['conv_mask.weight'].reshape(C) @ flat + p['conv_mask.bias'][0]
    context = flat @ np_softmax(logits)  # (C,)
    hidden = p['channel_add_conv.0.weight'].reshape(-1, C) @ context + p[
        'channel_add_conv.0.bias']
    hidden = (hidden - hidden.mean()) / np.sqrt(hidden.var() + 1e-5)
    hidden = hidden * p['channel_add_conv.1.weight'].ravel() + p[
        'channel_add_conv.1.bias'].ravel()
    hidden = np.maximum(hidden, 0)
    out = p['channel_add_conv.3.weight'].reshape(C, -1) @ hidden + p[
        'channel_add_conv.3.bias']
    return x + out[:, None, None]


def reference_fgd(loss, S, T, fg_masks, temp, level=0):
    """Loops over images following Yang et al. (CVPR 2022), Eq. 1-10."""
    N, C, H, W = S.shape
    fg_total = bg_total = attention_total = global_total = 0.0
    for n in range(N):
        spatial = {}
        channel = {}
        for key, F in (('S', S[n]), ('T', T[n])):
            spatial[key] = H * W * np_softmax(
                np.abs(F).mean(0).ravel() / temp).reshape(H, W)
            channel[key] = C * np_softmax(np.abs(F).mean((1, 2)) / temp)
        fg = fg_masks[n]
        bg = (fg == 0).astype(float)
        bg = bg / max(bg.sum(), 1)
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    err = spatial['T'][i, j] * channel['T'][c] * (
                        S[n, c, i, j] - T[n, c, i, j])**2
                    fg_total += fg[i, j] * err
                    bg_total += bg[i, j] * err
        attention_total += np.abs(spatial['S'] - spatial['T']).sum()
        attention_total += np.abs(channel['S'] - channel['T']).sum()
        global_total += ((
            reference_context_block(loss.student_context_blocks[level], S[n])
            - reference_context_block(loss.teacher_context_blocks[level],
                                      T[n]))**2).sum()
    return (WEIGHTS['alpha_fg'] * fg_total + WEIGHTS['beta_bg'] * bg_total +
            WEIGHTS['gamma_attention'] * attention_total +
            WEIGHTS['lambda_global'] * global_total) / N


def randomised_fgd(in_channels, seed=0, **kwargs):
    torch.manual_seed(seed)
    loss = FGDLoss(in_channels, **WEIGHTS, **kwargs)
    # the GcBlocks' last convs start at zero; make the global term non-zero
    for param in loss.parameters():
        torch.nn.init.normal_(param, std=0.3)
    return loss


def test_matches_loop_reference_with_horizontal_boxes():
    rng = np.random.default_rng(9)
    S, T = rng.normal(size=(2, 4, 4, 5)), rng.normal(size=(2, 4, 4, 5))
    boxes = [np.array([[3., 2., 22., 12.], [20., 16., 38., 30.]]),
             np.zeros((0, 4))]
    stride = 8
    loss = randomised_fgd(4, temperature=0.8)
    value = loss(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32),
        [gt(torch.tensor(b, dtype=torch.float32)) for b in boxes],
        [dict(batch_input_shape=(4 * stride, 5 * stride))] * 2)
    fg_masks = [hbox_fg_mask(b, 4, 5, stride) for b in boxes]
    assert fg_masks[0].sum() > 0
    expected = reference_fgd(loss, S, T, fg_masks, temp=0.8)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_matches_loop_reference_with_rotated_boxes():
    # the foreground mask of rotated boxes comes from rasterize_gt_boxes
    # (tested on its own); the loss terms are checked independently here
    rng = np.random.default_rng(10)
    S, T = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(1, 2, 5, 5))
    rboxes = RotatedBoxes(torch.tensor([[20., 20., 40., 8., math.pi / 4]]))
    loss = randomised_fgd(2)
    batch_gt = [gt(rboxes)]
    value = loss(
        torch.tensor(S, dtype=torch.float32),
        torch.tensor(T, dtype=torch.float32), batch_gt,
        [dict(batch_input_shape=(40, 40))])
    fg = rasterize_gt_boxes(batch_gt, (5, 5), 8, area_normalize=True)
    # the 5 x 1 cell bar at 45 deg covers the three diagonal cells
    expected_fg = np.zeros((5, 5))
    expected_fg[[1, 2, 3], [1, 2, 3]] = 1 / 3
    np.testing.assert_allclose(fg[0, 0].numpy(), expected_fg, rtol=1e-6)
    expected = reference_fgd(loss, S, T, [expected_fg], temp=0.5)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_hand_computed_value():
    # C = 2, 2 x 2 map, teacher all ones, student zeros: every attention is
    # uniform (= 1), the box covers one cell (fg weight 1), the 3 background
    # cells weigh 1/3 each, the zero-initialised GcBlocks add nothing.
    loss = FGDLoss(2, alpha_fg=1., beta_bg=1., gamma_attention=1.,
                   lambda_global=1.)
    value = loss(
        torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2),
        [gt(torch.tensor([[0., 0., 8., 8.]]))],
        [dict(batch_input_shape=(16, 16))])
    # fg: 1 cell x 2 channels = 2; bg: 3 x 1/3 x 2 = 2; attention: 0;
    # global: 8 squared errors of 1 = 8
    assert value.item() == pytest.approx(12.0)


def test_multi_level_sums_levels_with_their_own_context_blocks():
    torch.manual_seed(0)
    levels_S = [torch.randn(2, 4, 4, 4), torch.randn(2, 6, 2, 2)]
    levels_T = [torch.randn(2, 4, 4, 4), torch.randn(2, 6, 2, 2)]
    batch_gt = [gt(torch.tensor([[2., 2., 20., 14.]])),
                gt(RotatedBoxes(torch.tensor([[16., 16., 12., 6., 0.3]])))]
    metas = [dict(batch_input_shape=(32, 32))] * 2
    multi = randomised_fgd([4, 6])
    total = multi(levels_S, levels_T, batch_gt, metas)
    expected = 0
    for level, channels in enumerate([4, 6]):
        single = FGDLoss(channels, **WEIGHTS)
        single.student_context_blocks[0].load_state_dict(
            multi.student_context_blocks[level].state_dict())
        single.teacher_context_blocks[0].load_state_dict(
            multi.teacher_context_blocks[level].state_dict())
        expected = expected + single(levels_S[level], levels_T[level],
                                     batch_gt, metas)
    torch.testing.assert_close(total, expected)


def test_context_blocks_are_trained_by_the_loss():
    loss = randomised_fgd(4)
    value = loss(torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3),
                 [gt(torch.zeros(0, 4))], [dict(batch_input_shape=(24, 24))])
    value.backward()
    for blocks in (loss.student_context_blocks, loss.teacher_context_blocks):
        assert blocks[0].channel_add_conv[3].weight.grad.abs().sum() > 0


def test_bad_configs_and_inputs_raise():
    with pytest.raises(MMRSKDError, match='at least 2 channels'):
        FGDLoss(1)
    loss = FGDLoss([4, 4])
    with pytest.raises(MMRSKDError, match=r'in_channels=\[4, 4\]'):
        loss(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2),
             [gt(torch.zeros(0, 4))], [dict(batch_input_shape=(16, 16))])
    with pytest.raises(MMRSKDError, match='2 batch_gt_instances'):
        FGDLoss(4)(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2),
                   [gt(torch.zeros(0, 4))] * 2,
                   [dict(batch_input_shape=(16, 16))])
    with pytest.raises(MMRSKDError, match='batch_input_shape'):
        FGDLoss(4)(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2),
                   [gt(torch.zeros(0, 4))], [dict(img_shape=(16, 16))])
