"""LTD: attention-masked imitation, CCD with LIC (fusion chain and explicit
inner-product binding), TASD with its VLR assigner, and the shipped CPU
configs training through the distiller."""
import math
import os.path as osp
import warnings

import pytest
import torch
import torch.nn.functional as F

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
from mmrotate.structures.bbox import RotatedBoxes, rbbox_overlaps

from mmrskd.models.losses.ltd_tasd_loss import LTD_TERMS
from mmrskd.models.task_modules import VLRAssigner, vlr_assigner
from mmrskd.models.task_modules.atss_candidates import ATSSCandidates
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.testing import (demo_batch, scene_batch, tiny_gfl_cfg,
                            tiny_rotated_retinanet_cfg)
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
E = math.e


def gt(boxes, labels=None):
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(
        -1, 4) if not isinstance(boxes, RotatedBoxes) else boxes
    if labels is None:
        labels = torch.zeros(len(boxes), dtype=torch.long)
    return InstanceData(bboxes=boxes, labels=torch.as_tensor(labels))


# ------------------------------------------------------- LTDAttentionLoss
def attention_pair():
    """N=1, C=1, H=1, W=2."""
    feats_S = torch.tensor([[[[1., 3.]]]])
    preds_T = torch.tensor([[[[0., -1.]]]])
    preds_S = torch.tensor([[[[1., 1.]]]], requires_grad=True)
    return preds_S, preds_T, feats_S


def test_attention_loss_matches_hand_computation():
    preds_S, preds_T, feats_S = attention_pair()
    loss = MODELS.build(dict(type='LTDAttentionLoss', temperature=1.0))
    # A(F_S) = 2 softmax(1, 3), A(T) = 2 softmax(0, 1), squared errors (1, 4)
    m0 = 1 / (1 + E**2) + 1 / (1 + E)
    m1 = E**2 / (1 + E**2) + E / (1 + E)
    value = loss(preds_S, preds_T, feats_S=feats_S)
    assert value.item() == pytest.approx(math.sqrt(m0 + 4 * m1), rel=1e-6)
    # without feats_S the student attention comes from preds_S: uniform
    u0, u1 = (1 + 2 / (1 + E)) / 2, (1 + 2 * E / (1 + E)) / 2
    assert loss(preds_S, preds_T).item() == pytest.approx(
        math.sqrt(u0 + 4 * u1), rel=1e-6)


def test_attention_loss_default_temperature_and_detached_mask():
    preds_S, preds_T, feats_S = attention_pair()
    loss = MODELS.build(dict(type='LTDAttentionLoss', loss_weight=2.0))
    a_s = [2 / (1 + math.exp(20)), 2 * math.exp(20) / (1 + math.exp(20))]
    a_t = [2 / (1 + math.exp(10)), 2 * math.exp(10) / (1 + math.exp(10))]
    mask = torch.tensor([(a_s[0] + a_t[0]) / 2, (a_s[1] + a_t[1]) / 2])
    value = loss(preds_S, preds_T, feats_S=feats_S)
    expected = math.sqrt(mask[0] * 1 + mask[1] * 4)
    assert value.item() == pytest.approx(2 * expected, rel=1e-6)
    value.backward()
    diff = (preds_S - preds_T).detach().flatten()
    torch.testing.assert_close(preds_S.grad.flatten(),
                               2 * mask * diff / expected)


def test_attention_loss_zero_difference_is_finite():
    preds_T = torch.randn(2, 3, 4, 4)
    preds_S = preds_T.clone().requires_grad_()
    value = MODELS.build(dict(type='LTDAttentionLoss'))([preds_S], [preds_T])
    value.backward()
    assert value.item() == pytest.approx(math.sqrt(1e-12))
    assert torch.isfinite(preds_S.grad).all()


def test_attention_loss_rejects_mismatched_feats():
    preds_S, preds_T, _ = attention_pair()
    with pytest.raises(MMRSKDError, match='feats_S'):
        MODELS.build(dict(type='LTDAttentionLoss'))(
            preds_S, preds_T, feats_S=torch.zeros(1, 5, 2, 2))


# ------------------------------------------------------------------ LIC
def test_lic_with_zero_offsets_is_the_plain_convolution():
    torch.manual_seed(0)
    lic = MODELS.build(
        dict(type='LocalImplicitCalibration', in_channels=3, out_channels=4))
    x = torch.randn(2, 3, 6, 7)
    lic.offset_conv.weight.data.zero_()
    torch.testing.assert_close(
        lic(x), F.conv2d(x, lic.deform_conv.weight, padding=1),
        rtol=1e-5, atol=1e-5)


def test_lic_offsets_are_learned_from_the_input():
    torch.manual_seed(0)
    lic = MODELS.build(
        dict(type='LocalImplicitCalibration', in_channels=3, out_channels=4))
    x = torch.randn(2, 3, 6, 7)
    out = lic(x)
    assert not torch.allclose(
        out, F.conv2d(x, lic.deform_conv.weight, padding=1), atol=1e-3)
    out.square().sum().backward()
    assert lic.offset_conv.weight.grad.abs().sum() > 0
    assert lic.deform_conv.weight.grad.abs().sum() > 0


# ------------------------------------------------------------ LTDCCDLoss
BN_SCALE = 1 / math.sqrt(1 + 1e-5)  # BN in eval mode with default stats


def hand_set_ccd(loss):
    """1x1 reduce = identity, LIC = identity (zero offsets, centre tap),
    gates = sigmoid(0, ln 3) = (0.5, 0.75); BN in eval mode."""
    loss.eval()
    for block in loss.blocks:
        block.reduce[0].weight.data.fill_(1.0)
        lic = block.calibrate[0]
        lic.offset_conv.weight.data.zero_()
        lic.deform_conv.weight.data.zero_()
        lic.deform_conv.weight.data[:, :, 1, 1] = 1.0
        if block.gate is not None:
            block.gate.weight.data.zero_()
            block.gate.bias.data.copy_(torch.tensor([0.0, math.log(3.0)]))
    return loss


def two_level_pyramids():
    feats_S = [torch.tensor([[[[1., 2.], [3., 4.]]]]),
               torch.tensor([[[[2.]]]])]
    feats_T = [torch.tensor([[[[0., 1.], [1., 0.]]]]),
               torch.tensor([[[[-1.]]]])]
    return feats_S, feats_T


@pytest.mark.parametrize('pooled_student', ['raw', 'adapted'])
def test_ccd_fusion_chain_matches_hand_computation(pooled_student):
    loss = hand_set_ccd(MODELS.build(dict(
        type='LTDCCDLoss', in_channels=1, out_channels=1, num_levels=2,
        pooled_student=pooled_student)))
    feats_S, feats_T = two_level_pyramids()
    k = BN_SCALE
    # coarsest first: out1 = k^2 * 2, residual k * 2 goes down (nearest)
    out1 = k * k * 2.0
    out0 = k * (0.5 * k * feats_S[0] + 0.75 * k * 2.0)
    mse = ((out0 - feats_T[0])**2).mean() + (out1 - (-1.0))**2
    # pyramid term of level 0 (H=2): only the 1x1 pool, weight 1/2,
    # normalised by 1 + 1/2; level 1 (H=1) has none
    pooled_src = feats_S[0] if pooled_student == 'raw' else out0
    pooled = 0.5 * (pooled_src.mean() - feats_T[0].mean())**2 / 1.5
    value = loss(feats_S, feats_T)
    assert value.item() == pytest.approx(float(mse + pooled), rel=1e-5)


def test_ccd_pyramid_term_pools_before_comparing():
    loss = MODELS.build(dict(type='LTDCCDLoss', in_channels=1,
                             out_channels=1, num_levels=1))
    checkerboard = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2
    feat_S = (2 * checkerboard - 1).float()[None, None]
    zeros = torch.zeros_like(feat_S)
    # 2x2, 4x4, 8x8 windows of a checkerboard average to 0
    assert loss.pyramid_pooled_loss(feat_S, zeros).item() == 0
    # a constant 2: each pooled MSE is 4, weights 1/2, 1/4, 1/8 over 1.875
    expected = 4 * (0.5 + 0.25 + 0.125) / 1.875
    assert loss.pyramid_pooled_loss(zeros + 2, zeros).item() == \
        pytest.approx(expected)


def reference_binding_weights(feats_S, feats_T, tau):
    """alpha[n, s, t] from plain loops over images and levels."""
    def rows(feat):
        flat = feat.flatten(1).double()
        gram = flat @ flat.t()
        return gram / gram.norm(dim=1, keepdim=True)

    rows_S = [rows(f) for f in feats_S]
    rows_T = [rows(f) for f in feats_T]
    num_imgs = feats_S[0].shape[0]
    alpha = torch.zeros(num_imgs, len(feats_S), len(feats_T),
                        dtype=torch.float64)
    for n in range(num_imgs):
        for s in range(len(feats_S)):
            logits = [float(rows_S[s][n] @ rows_T[t][n]) / tau
                      for t in range(len(feats_T))]
            total = sum(math.exp(v) for v in logits)
            for t, v in enumerate(logits):
                alpha[n, s, t] = math.exp(v) / total
    return alpha


def test_ccd_inner_product_binding_matches_reference():
    torch.manual_seed(0)
    loss = hand_set_ccd(MODELS.build(dict(
        type='LTDCCDLoss', in_channels=2, out_channels=2, num_levels=2,
        binding='inner_product', binding_temperature=0.5, pool_sizes=())))
    for block in loss.blocks:
        block.reduce[0].weight.data.copy_(torch.eye(2)[:, :, None, None])
        block.calibrate[0].deform_conv.weight.data.zero_()
        block.calibrate[0].deform_conv.weight.data[:, :, 1, 1] = torch.eye(2)
    feats_S = [torch.randn(3, 2, 4, 4), torch.randn(3, 2, 2, 2)]
    feats_T = [torch.randn(3, 2, 4, 4), torch.randn(3, 2, 2, 2)]
    alpha = reference_binding_weights(feats_S, feats_T, 0.5)
    torch.testing.assert_close(
        loss.binding_weights(feats_S, feats_T).double(), alpha)
    assert torch.allclose(alpha.sum(2), torch.ones(3, 2,
                                                   dtype=torch.float64))
    outputs = [BN_SCALE**2 * f for f in feats_S]  # identity blocks
    expected = 0.0
    for s, out in enumerate(outputs):
        for t, target in enumerate(feats_T):
            if out.shape[-1] > target.shape[-1]:
                out_t = F.adaptive_avg_pool2d(out, target.shape[-2:])
            else:
                out_t = out
                target = F.adaptive_avg_pool2d(target, out.shape[-2:])
            per_image = ((out_t - target)**2).flatten(1).mean(1).double()
            expected += float((alpha[:, s, t] * per_image).mean())
    assert loss(feats_S, feats_T).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('binding', ['fusion', 'inner_product'])
def test_ccd_trains_every_parameter_and_stays_fp32(binding):
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='LTDCCDLoss', in_channels=4,
                             out_channels=6, num_levels=3, binding=binding,
                             pooled_student='adapted'))
    sizes = [(8, 8), (4, 4), (2, 2)]
    feats_S = [torch.randn(2, 4, *s).requires_grad_() for s in sizes]
    feats_T = [torch.randn(2, 6, *s) for s in sizes]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss(feats_S, feats_T)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    for name, param in loss.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # extreme inputs stay finite
    value = loss([f.detach().sign() * 1e4 for f in feats_S],
                 [f.sign() * 1e4 for f in feats_T])
    assert torch.isfinite(value)


def ccd_pair(binding):
    """The same random CCD loss without and with ``with_cp``."""
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='LTDCCDLoss', in_channels=4,
                              out_channels=6, num_levels=3, binding=binding,
                              pooled_student='adapted'))
    checkpointed = MODELS.build(dict(type='LTDCCDLoss', in_channels=4,
                                     out_channels=6, num_levels=3,
                                     binding=binding,
                                     pooled_student='adapted', with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    assert all(block.with_cp for block in checkpointed.blocks)
    sizes = [(8, 8), (4, 4), (2, 2)]
    feats_S = [torch.randn(2, 4, *s) for s in sizes]
    feats_T = [torch.randn(2, 6, *s) for s in sizes]
    return plain, checkpointed, feats_S, feats_T


@pytest.mark.parametrize('binding', ['fusion', 'inner_product'])
def test_ccd_with_cp_gives_the_same_loss_and_gradients(binding):
    plain, checkpointed, feats_S, feats_T = ccd_pair(binding)
    results = []
    for loss in (plain, checkpointed):
        inputs = [f.clone().requires_grad_() for f in feats_S]
        value = loss(inputs, feats_T)
        params = [p for _, p in loss.named_parameters()]
        grads = torch.autograd.grad(value, inputs + params)
        results.append((value, grads))
    (value, grads), (value_cp, grads_cp) = results
    torch.testing.assert_close(value_cp, value, rtol=0, atol=1e-6)
    assert len(grads_cp) == len(grads) == 3 + len(list(plain.parameters()))
    for grad_cp, grad in zip(grads_cp, grads):
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad_cp, grad, rtol=0, atol=1e-6)
    with torch.no_grad():  # no checkpoint without grad, same value
        torch.testing.assert_close(checkpointed(feats_S, feats_T), value)


def saved_bytes(loss, feats_S, feats_T):
    """Bytes of the tensors the forward keeps for the backward (outside
    checkpointed regions, which keep theirs through their own hooks)."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss([f.clone().requires_grad_() for f in feats_S], feats_T)
    return sum(saved), max(saved)


def test_ccd_with_cp_keeps_fewer_tensors_for_the_backward():
    plain, checkpointed, feats_S, feats_T = ccd_pair('fusion')
    total, largest = saved_bytes(plain, feats_S, feats_T)
    total_cp, largest_cp = saved_bytes(checkpointed, feats_S, feats_T)
    # without: the bytes of the finest LIC's (N, 9 * mid, H * W) columns
    columns = 2 * 9 * 6 * 8 * 8 * 4
    assert largest == columns
    # with: the blocks' outputs and the loss terms' inputs only
    assert largest_cp < columns / 4
    assert total_cp < total / 4


def test_ccd_config_errors_are_one_line():
    with pytest.raises(MMRSKDError, match="pooled_student='adapted'") as e:
        MODELS.build(dict(type='LTDCCDLoss', in_channels=16, out_channels=32))
    assert '\n' not in str(e.value)
    loss = MODELS.build(dict(type='LTDCCDLoss', in_channels=4,
                             out_channels=4, num_levels=2))
    with pytest.raises(MMRSKDError, match='levels'):
        loss([torch.zeros(1, 4, 2, 2)], [torch.zeros(1, 4, 2, 2)])
    with pytest.raises(MMRSKDError, match='in_channels'):
        loss([torch.zeros(1, 3, 2, 2)] * 2, [torch.zeros(1, 4, 2, 2)] * 2)


# ------------------------------------------------------------ VLRAssigner
def reference_vlr(priors, boxes, num_level_priors, topk, mode, ratio):
    """Brute force over (prior, GT) pairs of horizontal boxes."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (
            b[3] - b[1]) - inter
        return inter / union

    def centre(a):
        return ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)

    def dist(a, b):
        (ax, ay), (bx, by) = centre(a), centre(b)
        return math.hypot(ax - bx, ay - by)

    def diou(a, b):
        cw = max(a[2], b[2]) - min(a[0], b[0])
        ch = max(a[3], b[3]) - min(a[1], b[1])
        return iou(a, b) - dist(a, b)**2 / (cw**2 + ch**2)

    priors, boxes = priors.tolist(), boxes.tolist()
    assigned = [0] * len(priors)
    overlaps = [0.0] * len(priors)
    best = [-1.0] * len(priors)
    for g, box in enumerate(boxes):
        candidates, start = [], 0
        for count in num_level_priors:
            level = sorted(range(start, start + count),
                           key=lambda i: dist(priors[i], box))
            candidates += level[:topk]
            start += count
        ious = [iou(priors[i], box) for i in candidates]
        mean = sum(ious) / len(ious)
        std = math.sqrt(sum((v - mean)**2 for v in ious) / (len(ious) - 1))
        thr = mean + std
        for i, prior in enumerate(priors):
            score = diou(prior, box) if mode == 'diou' else iou(prior, box)
            if ratio * thr <= score < thr and iou(prior, box) > best[i]:
                best[i] = iou(prior, box)
                assigned[i], overlaps[i] = g + 1, best[i]
    return assigned, overlaps


def assign_vlr(priors, boxes, num_level_priors, **kwargs):
    assigner = TASK_UTILS.build(dict(type='VLRAssigner', **kwargs))
    return assigner.assign(
        InstanceData(priors=priors), num_level_priors,
        gt(boxes) if not isinstance(boxes, InstanceData) else boxes)


def test_vlr_matches_hand_computation():
    priors = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.],
                           [8., 0., 18., 10.], [20., 0., 30., 10.]])
    # top-3 IoUs (1, 1/3, 1/9): thr = 0.4815 + 0.4626 = 0.9441
    # DIoU: 1, 1/3 - 25/325 = 0.2564, 1/9 - 64/424 = -0.0398, -0.4
    result = assign_vlr(priors, [[0., 0., 10., 10.]], [4], topk=3)
    assert result.gt_inds.tolist() == [0, 1, 0, 0]
    assert result.max_overlaps.tolist() == pytest.approx([0, 1 / 3, 0, 0])
    assert result.labels.tolist() == [-1, 0, -1, -1]
    # a lower bound above 0.2564 / 0.9441 empties the region
    result = assign_vlr(priors, [[0., 0., 10., 10.]], [4], topk=3,
                        lower_ratio=0.3)
    assert result.gt_inds.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize('mode', ['diou', 'iou'])
def test_vlr_matches_brute_force_on_random_boxes(mode):
    gen = torch.Generator().manual_seed(3)
    centres = torch.rand(40, 2, generator=gen) * 64
    sizes = torch.tensor([8.] * 25 + [16.] * 15)[:, None].expand(-1, 2)
    priors = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    gt_centres = torch.rand(3, 2, generator=gen) * 64
    gt_sizes = torch.rand(3, 2, generator=gen) * 20 + 6
    boxes = torch.cat([gt_centres - gt_sizes / 2, gt_centres + gt_sizes / 2],
                      dim=1)
    result = assign_vlr(priors, boxes, [25, 15], topk=5, iou_mode=mode)
    assigned, overlaps = reference_vlr(priors, boxes, [25, 15], 5, mode,
                                       0.25)
    assert result.gt_inds.tolist() == assigned
    assert result.max_overlaps.tolist() == pytest.approx(overlaps, abs=1e-5)
    assert sum(a > 0 for a in assigned) > 0  # the case is not vacuous


def test_vlr_rotated_boxes_agree_with_horizontal_ones():
    gen = torch.Generator().manual_seed(1)
    centres = torch.rand(30, 2, generator=gen) * 48
    priors = torch.cat([centres - 6, centres + 6], dim=1)
    hbox = torch.tensor([[10., 12., 30., 22.]])
    # the same box as a rotated box, and turned by 90 degrees
    for rbox in ([[20., 17., 20., 10., 0.]], [[20., 17., 10., 20.,
                                              math.pi / 2]]):
        rotated = assign_vlr(priors, gt(RotatedBoxes(torch.tensor(rbox))),
                             [30], topk=5)
        horizontal = assign_vlr(priors, hbox, [30], topk=5)
        assert rotated.gt_inds.tolist() == horizontal.gt_inds.tolist()
        torch.testing.assert_close(rotated.max_overlaps,
                                   horizontal.max_overlaps, atol=1e-4,
                                   rtol=0)


def kernel_vlr(priors, gt_instances, num_level_priors, topk=9,
               iou_mode='diou', lower_ratio=0.25):
    """The VLR of rotated GT as the assigner first computed it: mmcv's
    kernel on every prior-GT pair, ``(P, k)`` matrices, and the highest IoU
    of each prior (the lowest GT on ties). Returns ``gt_inds`` and
    ``max_overlaps``."""
    boxes = gt_instances.bboxes
    ious = rbbox_overlaps(HorizontalBoxes(priors).convert_to('rbox').tensor,
                          boxes.tensor).nan_to_num(0.0).clamp(0, 1)
    centres = (priors[:, :2] + priors[:, 2:]) / 2
    distances = (centres[:, None] - boxes.centers[None]).pow(2).sum(-1).sqrt()
    candidates, start = [], 0
    for count in num_level_priors:
        candidates.append(distances[start:start + count].topk(
            min(topk, count), dim=0, largest=False)[1] + start)
        start += count
    candidate_ious = ious.gather(0, torch.cat(candidates))
    thresholds = candidate_ious.mean(0) + candidate_ious.std(0).nan_to_num(0)
    scores = ious
    if iou_mode == 'diou':
        hulls = boxes.convert_to('hbox').tensor
        enclose = (torch.max(priors[:, None, 2:], hulls[None, :, 2:]) -
                   torch.min(priors[:, None, :2], hulls[None, :, :2]))
        scores = ious - distances**2 / (enclose**2).sum(-1).clamp_min(1e-7)
    in_vlr = (scores >= lower_ratio * thresholds) & (scores < thresholds)
    best, best_gt = torch.where(in_vlr, ious, ious.new_tensor(-1.0)).max(1)
    assigned = best >= 0
    return torch.where(assigned, best_gt + 1, 0), torch.where(
        assigned, best, best.new_zeros(()))


def dense_scene_vlr_inputs(seed=2):
    """A rendered synthetic DOTA scene (29 small rotated GT) on the 12,276
    anchors of the 9-anchor RetinaNet: priors, counts per level, GT."""
    detector = MODELS.build(tiny_rotated_retinanet_cfg())
    _, samples = scene_batch(detector, num_images=1, seed=seed)
    anchors = TASK_UTILS.build(dict(
        type='mmdet.AnchorGenerator', octave_base_scale=4,
        scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
        strides=[8, 16, 32, 64, 128]))
    level_priors = anchors.grid_priors(
        [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)], device='cpu')
    return (torch.cat(level_priors), [len(p) for p in level_priors],
            samples[0].gt_instances)


def assert_kernel_vlr(result, priors, gt_instances, counts, atol=1e-6,
                      **kwargs):
    """``result`` is the VLR of mmcv's kernel on every pair: the same GT
    for every prior, IoUs within ``atol`` (the kernel's float32
    rounding)."""
    gt_inds, max_overlaps = kernel_vlr(priors, gt_instances, counts,
                                       **kwargs)
    assert torch.equal(result.gt_inds, gt_inds)
    assigned = gt_inds > 0
    assert torch.equal(result.labels[assigned],
                       gt_instances.labels[gt_inds[assigned] - 1])
    assert (result.labels[~assigned] == -1).all()
    torch.testing.assert_close(result.max_overlaps, max_overlaps, atol=atol,
                               rtol=0)


def random_rotated_vlr_inputs(seed=5):
    """300 priors of two levels, six rotated GT of random angles."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(300, 2, generator=gen) * 128
    sizes = torch.tensor([8.] * 200 + [24.] * 100)[:, None].expand(-1, 2)
    priors = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    rboxes = torch.cat([torch.rand(6, 2, generator=gen) * 128,
                        torch.rand(6, 2, generator=gen) * 30 + 4,
                        (torch.rand(6, 1, generator=gen) - 0.5) * math.pi],
                       dim=1)
    return priors, [200, 100], gt(RotatedBoxes(rboxes), [0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize('mode,ratio', [('diou', 0.25), ('iou', 0.25),
                                        ('diou', 0.0), ('iou', 0.0)])
def test_vlr_of_rotated_gt_is_the_kernels_on_every_pair(mode, ratio,
                                                        monkeypatch):
    """Rotated IoUs computed only where the bound allows (the exact ones,
    the kernel where they decide) give the region of the kernel on every
    pair, with a lower bound of 0 too (zero-IoU pairs in the region); the
    bound leaves the region unchanged."""
    priors, counts, gt_instances = random_rotated_vlr_inputs()
    kwargs = dict(topk=9, iou_mode=mode, lower_ratio=ratio)
    pruned = assign_vlr(priors, gt_instances, counts, **kwargs)
    assert (pruned.gt_inds > 0).sum() > 5  # not vacuous
    assert_kernel_vlr(pruned, priors, gt_instances, counts, **kwargs)
    monkeypatch.setattr(
        VLRAssigner, '_iou_upper_bound',
        staticmethod(lambda priors, hulls, areas: priors.new_full(
            (len(priors), ), float('inf'))))
    unbounded = assign_vlr(priors, gt_instances, counts, **kwargs)
    assert torch.equal(pruned.gt_inds, unbounded.gt_inds)
    torch.testing.assert_close(pruned.max_overlaps, unbounded.max_overlaps,
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize('mode', ['diou', 'iou'])
def test_vlr_on_a_dense_scene_is_the_kernels_on_every_pair(mode,
                                                           monkeypatch):
    """Many small rotated GT (a rendered synthetic DOTA scene) on the
    9-anchor RetinaNet priors: the region of the kernel on every pair,
    with the kernel on its candidates and a few other pairs only."""
    priors, counts, boxes = dense_scene_vlr_inputs()
    computed = []
    kernel = RBboxOverlaps2D.__call__

    def counting(self, bboxes1, bboxes2, *args, **kwargs):
        computed.append(len(bboxes1))
        return kernel(self, bboxes1, bboxes2, *args, **kwargs)

    monkeypatch.setattr(RBboxOverlaps2D, '__call__', counting)
    result = assign_vlr(priors, boxes, counts, iou_mode=mode)
    assert (result.gt_inds > 0).sum() > 50
    assert_kernel_vlr(result, priors, boxes, counts, iou_mode=mode)
    # the 45 candidates of each GT, and a few pairs near a decision
    assert sum(computed) < 45 * len(boxes) + 100


def test_vlr_decides_by_the_kernel_near_a_bound_or_a_tie(monkeypatch):
    """Exact IoUs off by up to half of ``KERNEL_MARGIN`` (here, each by a
    random amount) still give the kernel's region and GT: every decision
    they could change goes to the kernel; without that guard they change
    the region."""
    priors, counts, boxes = dense_scene_vlr_inputs()
    exact_iou = vlr_assigner.aligned_hbox_rbox_iou
    margin = vlr_assigner.KERNEL_MARGIN

    def off(hboxes, rboxes):
        gen = torch.Generator().manual_seed(len(hboxes))
        noise = (torch.rand(len(hboxes), generator=gen,
                            dtype=torch.float64) - 0.5) * margin
        return exact_iou(hboxes, rboxes) + noise

    monkeypatch.setattr(vlr_assigner, 'aligned_hbox_rbox_iou', off)
    assert_kernel_vlr(assign_vlr(priors, boxes, counts), priors, boxes,
                      counts, atol=margin)
    monkeypatch.setattr(vlr_assigner, 'KERNEL_MARGIN', 0.0)
    unguarded = assign_vlr(priors, boxes, counts)
    assert not torch.equal(unguarded.gt_inds,
                           kernel_vlr(priors, boxes, counts)[0])


def test_vlr_pairs_keep_every_pair_that_can_be_in_the_region():
    """The pairs left out have an IoU bound below their GT's region."""
    priors, counts, boxes = dense_scene_vlr_inputs()
    assigner = VLRAssigner()
    candidates = ATSSCandidates(HorizontalBoxes(priors), boxes.bboxes,
                                counts)
    candidate_idxs, candidate_ious = candidates.candidates(9)
    lowers = 0.25 * assigner.thresholds(candidate_ious)
    hulls = boxes.bboxes.convert_to('hbox').tensor
    num_gt = len(hulls)
    candidate_ids = (candidate_idxs * num_gt + torch.arange(num_gt)).flatten()
    kept = torch.zeros(len(priors) * num_gt, dtype=torch.bool)
    kept[assigner.pairs(priors, hulls, boxes.bboxes.areas, candidate_ids,
                        lowers)] = True
    kept = kept.view(len(priors), num_gt)
    assert kept.sum() < 0.1 * kept.numel()
    assert kept.view(-1)[candidate_ids].all()
    rows, cols = (~kept).nonzero(as_tuple=True)
    bounds = VLRAssigner._iou_upper_bound(priors[rows], hulls[cols],
                                          boxes.bboxes.areas[cols])
    assert (bounds < lowers[cols]).all()


def test_vlr_iou_upper_bound_bounds_the_kernel():
    gen = torch.Generator().manual_seed(7)
    centres = torch.rand(500, 2, generator=gen) * 64
    sizes = torch.rand(500, 2, generator=gen) * 30 + 1
    priors = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    rboxes = RotatedBoxes(torch.cat([
        torch.rand(20, 2, generator=gen) * 64,
        torch.rand(20, 2, generator=gen) * 30 + 1,
        (torch.rand(20, 1, generator=gen) - 0.5) * math.pi], dim=1))
    # 0 and 90 degrees: the hull is the box, the bound can be reached
    rboxes.tensor[:5, 4] = 0
    rboxes.tensor[5:8, 4] = math.pi / 2
    rows, cols = torch.meshgrid(torch.arange(500), torch.arange(20),
                                indexing='ij')
    rows, cols = rows.flatten(), cols.flatten()
    bound = VLRAssigner._iou_upper_bound(
        priors[rows], rboxes.convert_to('hbox').tensor[cols],
        rboxes.areas[cols]).view(500, 20)
    ious = RBboxOverlaps2D()(
        HorizontalBoxes(priors).convert_to('rbox').tensor, rboxes.tensor)
    assert (ious > 0.3).sum() > 20  # overlapping pairs are tested
    assert (ious <= bound + 1e-6).all()
    # tighter than the previous min(U, areas) / max(areas)
    hbox_area = (sizes[:, 0] * sizes[:, 1])[:, None]
    assert (bound <= torch.minimum(hbox_area, rboxes.areas[None]) /
            torch.maximum(hbox_area, rboxes.areas[None]) + 1e-6).all()


def test_vlr_without_gt_or_with_degenerate_gt_is_empty():
    priors = torch.tensor([[0., 0., 8., 8.], [4., 4., 12., 12.]])
    empty = assign_vlr(priors, torch.zeros(0, 4), [2])
    assert empty.gt_inds.tolist() == [0, 0]
    degenerate = assign_vlr(priors, [[5., 5., 5., 5.]], [2])
    assert degenerate.gt_inds.tolist() == [0, 0]
    assert torch.isfinite(degenerate.max_overlaps).all()


# ------------------------------------------------------------ LTDTASDLoss
def build_tasd(terms, **kwargs):
    return MODELS.build(dict(type='LTDTASDLoss', terms=terms, **kwargs))


def one_term(task, region, T=2.0, weight_temperature=None, loss_weight=1.0,
             **kwargs):
    """A TASD loss with the single term ``loss_term``."""
    return build_tasd(
        dict(loss_term=dict(task=task, region=region, T=T,
                            weight_temperature=weight_temperature,
                            loss_weight=loss_weight)), **kwargs)


def term_value(tasd, task, logits_S, logits_T, batch_gt, metas=None):
    """``loss_term`` of a one-term loss; a ``reg`` term gets zero class
    logits of its levels' sizes (they only size the regions)."""
    if task == 'cls':
        return tasd(logits_S, logits_T, batch_gt, metas)['loss_term']
    cls_logits = [level.new_zeros(level.shape[0], 3, *level.shape[-2:])
                  for level in logits_T]
    return tasd(cls_logits, cls_logits, batch_gt, metas,
                reg_logits_S=logits_S, reg_logits_T=logits_T)['loss_term']


def region_assigner(**kwargs):
    return TASK_UTILS.build(dict(type='TASDRegionAssigner', **kwargs))


def mixed_size_batch(detector):
    """Two images of different sizes, padded into one 96x96 batch; GT near
    the lower border of the smaller one."""
    gen = torch.Generator().manual_seed(0)
    images, samples = [], []
    for (height, width), boxes in (
            ((96, 96), [[10., 12., 50., 40.], [60., 50., 90., 92.]]),
            ((64, 96), [[70., 8., 95., 60.], [5., 40., 30., 63.]])):
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.tensor(boxes)),
            labels=torch.tensor([0, 1]))
        samples.append(sample)
        images.append(torch.randint(0, 256, (3, height, width),
                                    generator=gen, dtype=torch.uint8))
    batch = detector.data_preprocessor(
        dict(inputs=images, data_samples=samples), training=True)
    return batch['inputs'], batch['data_samples']


@pytest.mark.parametrize('region', ['pos', 'vlr'])
def test_tasd_regions_use_the_gfl_heads_valid_priors(region):
    torch.manual_seed(0)
    detector = MODELS.build(tiny_gfl_cfg())
    inputs, samples = mixed_size_batch(detector)
    head = detector.bbox_head
    cls_scores, _ = head(detector.extract_feat(inputs))
    featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    metas = [s.metainfo for s in samples]
    batch_gt = [s.gt_instances for s in samples]
    anchors, valid_flags = head.get_anchors(featmap_sizes, metas,
                                            device='cpu')
    regions = region_assigner()([region], featmap_sizes, batch_gt,
                                metas)[region]
    valid = torch.stack([torch.cat(flags) for flags in valid_flags])
    assert not valid.all()  # the smaller image has padded priors
    assert not (torch.cat(regions, dim=1) & ~valid).any()
    if region == 'vlr':
        assert sum(int(r.sum()) for r in regions) > 0
        return
    # the positives are exactly those of the head's own ATSS assignment
    targets = head.get_targets(anchors, valid_flags, batch_gt, metas)
    head_positives = [labels < head.num_classes for labels in targets[1]]
    for ours, theirs in zip(regions, head_positives):
        assert torch.equal(ours, theirs)
    assert sum(int(r.sum()) for r in regions) > 0


def fixed_region(tasd, region, masks):
    tasd.regions = lambda *args: {region: masks}
    return tasd


STRIDE_8 = dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                octave_base_scale=8, scales_per_octave=1, strides=[8])


def test_tasd_reg_term_matches_hand_computation():
    torch.manual_seed(0)
    bins = 4  # reg_max = 3
    logits_S = torch.randn(1, 4 * bins, 1, 3, requires_grad=True)
    logits_T = torch.randn(1, 4 * bins, 1, 3)
    # priors 0 and 2 of the level are in the region
    tasd = fixed_region(
        one_term('reg', 'vlr', T=10, weight_temperature=5,
                 loss_weight=0.025, reg_max=3, prior_generator=STRIDE_8),
        'vlr', [torch.tensor([[True, False, True]])])
    value = term_value(tasd, 'reg', [logits_S], [logits_T],
                       [gt([[0., 0., 8., 8.]])])
    rows_S = logits_S[0, :, 0, [0, 2]].t().reshape(-1, bins)
    rows_T = logits_T[0, :, 0, [0, 2]].t().reshape(-1, bins)
    expected = 0.0
    weights = [math.exp(float(r.sum()) / 5) for r in rows_T]
    weights = [8 * w / sum(weights) for w in weights]
    for row_S, row_T, weight in zip(rows_S.tolist(), rows_T.tolist(),
                                    weights):
        p_T = [math.exp(v / 10) / sum(math.exp(u / 10) for u in row_T)
               for v in row_T]
        p_S = [math.exp(v / 10) / sum(math.exp(u / 10) for u in row_S)
               for v in row_S]
        kl = sum(t * math.log(t / s) for t, s in zip(p_T, p_S)) / bins
        expected += weight * kl * 100
    expected = 0.025 * expected / 16
    assert value.item() == pytest.approx(expected, rel=1e-5)


def cls_pair():
    logits_S = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[-1.0, 0.5]]]],
                            requires_grad=True)  # (1, 3 classes, 1, 2)
    logits_T = torch.tensor([[[[3.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]]])
    return logits_S, logits_T


def softmax_kl(t, s, T):
    """KL(softmax(t / T) || softmax(s / T)), mean over the classes."""
    p_S = [math.exp(v / T) / sum(math.exp(u / T) for u in s) for v in s]
    p_T = [math.exp(v / T) / sum(math.exp(u / T) for u in t) for v in t]
    return sum(a * math.log(a / b) for a, b in zip(p_T, p_S)) / len(t)


def test_tasd_cls_term_matches_hand_computation():
    logits_S, logits_T = cls_pair()
    tasd = fixed_region(
        one_term('cls', 'pos', T=2, loss_weight=0.5,
                 prior_generator=STRIDE_8),
        'pos', [torch.tensor([[True, False]])])
    value = term_value(tasd, 'cls', [logits_S], [logits_T],
                       [gt([[0., 0., 8., 8.]])])
    kl = softmax_kl([3.0, 0.0, 0.0], [1.0, 0.0, -1.0], T=2) * 4
    assert value.item() == pytest.approx(0.5 * kl / 16, rel=1e-5)
    value.backward()
    assert logits_S.grad[..., 1].abs().sum() == 0  # outside the region


def binary_kl(t, s, T):
    """Per-class KL of (sigmoid(t / T), 1 - ...) from the student's, mean
    over the classes."""
    total = 0.0
    for a, b in zip(t, s):
        p_T, p_S = 1 / (1 + math.exp(-a / T)), 1 / (1 + math.exp(-b / T))
        total += p_T * math.log(p_T / p_S) + (1 - p_T) * math.log(
            (1 - p_T) / (1 - p_S))
    return total / len(t)


def test_tasd_sigmoid_cls_mode_matches_hand_computation():
    logits_S, logits_T = cls_pair()
    tasd = fixed_region(
        one_term('cls', 'pos', T=2, loss_weight=0.5,
                 prior_generator=STRIDE_8, cls_mode='sigmoid'),
        'pos', [torch.tensor([[True, False]])])
    value = term_value(tasd, 'cls', [logits_S], [logits_T],
                       [gt([[0., 0., 8., 8.]])])
    kl = binary_kl([3.0, 0.0, 0.0], [1.0, 0.0, -1.0], T=2) * 4
    assert value.item() == pytest.approx(0.5 * kl / 16, rel=1e-5)
    # unlike the softmax, it sees a common shift of all class logits
    shifted = term_value(tasd, 'cls', [logits_S - 3], [logits_T],
                         [gt([[0., 0., 8., 8.]])])
    assert shifted.item() > value.item()
    with pytest.raises(MMRSKDError, match="cls_mode='kl' is not"):
        one_term('cls', 'pos', cls_mode='kl')


def test_tasd_terms_are_named_and_weighted_on_their_regions():
    # two cls terms of one loss on two fixed regions: each term's
    # temperature, weight and region, returned under its name
    logits_S, logits_T = cls_pair()
    tasd = build_tasd(
        dict(loss_kd=dict(task='cls', region='pos', T=2, loss_weight=0.5),
             loss_kd_vlr=dict(task='cls', region='vlr', T=1,
                              loss_weight=0.25)),
        prior_generator=STRIDE_8)
    tasd.regions = lambda *args: dict(
        pos=[torch.tensor([[True, False]])],
        vlr=[torch.tensor([[True, True]])])
    values = tasd([logits_S], [logits_T], [gt([[0., 0., 8., 8.]])])
    assert list(values) == ['loss_kd', 'loss_kd_vlr']
    first = softmax_kl([3.0, 0.0, 0.0], [1.0, 0.0, -1.0], T=1)
    second = softmax_kl([0.0, 0.0, 1.0], [0.0, 2.0, 0.5], T=1)
    assert values['loss_kd'].item() == pytest.approx(
        0.5 * softmax_kl([3.0, 0.0, 0.0], [1.0, 0.0, -1.0], T=2) * 4 / 16,
        rel=1e-5)
    assert values['loss_kd_vlr'].item() == pytest.approx(
        0.25 * (first + second) / 16, rel=1e-5)


def test_tasd_task_specific_cls_regions():
    anchors = dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                   octave_base_scale=1, scales_per_octave=1, strides=[8])
    # priors of a 1x4 map centred at x = 0, 8, 16, 24 (mmdet's offset 0)
    boxes = [gt([[4., -4., 20., 4.]])]
    assigner = region_assigner(prior_generator=anchors, score_ratio=0.5)
    # teacher max probabilities 0.9, 0.5, 0.4, 0.2: above 0.45 are the first
    probs = torch.tensor([0.9, 0.5, 0.4, 0.2])
    logits = torch.stack([probs.logit(), torch.full((4, ), -9.)], dim=1)
    regions = assigner(['gt_center', 'teacher_score'], [(1, 4)], boxes,
                       cls_rows_T=[logits[None]])
    assert regions['gt_center'][0].tolist() == [[False, True, True, False]]
    assert regions['teacher_score'][0].tolist() == [
        [True, True, False, False]]


def test_tasd_rows_follow_mmdets_prior_order():
    anchors = dict(type='mmdet.AnchorGenerator', octave_base_scale=4,
                   scales_per_octave=3, ratios=[0.5, 1.0, 2.0], strides=[8])
    tasd = one_term('cls', 'pos', prior_generator=anchors)
    num_classes, height, width = 2, 2, 3
    # channel a * C + c of position (h, w) holds 100 * (h * W + w) + a
    values = torch.zeros(1, 9 * num_classes, height, width)
    for a in range(9):
        for h in range(height):
            for w in range(width):
                values[0, a * num_classes:(a + 1) * num_classes, h, w] = \
                    100 * (h * width + w) + a
    rows = tasd._to_rows(values, 'cls')
    priors = TASK_UTILS.build(anchors).grid_priors([(height, width)],
                                                   device='cpu')[0]
    assert rows.shape == (1, len(priors), num_classes)
    # the prior index p = (h * W + w) * 9 + a
    expected = torch.tensor([100 * (p // 9) + p % 9
                             for p in range(len(priors))]).float()
    torch.testing.assert_close(rows[0, :, 0], expected)


@pytest.mark.parametrize('task,region', [('reg', 'pos'), ('reg', 'vlr'),
                                         ('cls', 'vlr'),
                                         ('cls', 'teacher_score')])
@pytest.mark.parametrize('scenario', ['empty_gt', 'extreme', 'rotated'])
def test_tasd_is_finite_on_edge_cases(task, region, scenario):
    torch.manual_seed(0)
    channels = 4 * 17 if task == 'reg' else 3
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    logits_S = [torch.randn(2, channels, *s).requires_grad_() for s in sizes]
    logits_T = [torch.randn(2, channels, *s) for s in sizes]
    boxes = [gt([[4., 4., 40., 30.], [20., 30., 60., 60.]], [0, 2]),
             gt([[10., 10., 30., 20.]])]
    if scenario == 'empty_gt':
        boxes = [gt(torch.zeros(0, 4))] * 2
    if scenario == 'extreme':
        logits_S = [(t.detach().sign() * 1e4).requires_grad_()
                    for t in logits_S]
        logits_T = [-t.sign() * 1e4 for t in logits_T]
    if scenario == 'rotated':
        boxes = [gt(RotatedBoxes(torch.tensor([[30., 30., 40., 16., 0.7]]))),
                 gt(RotatedBoxes(torch.zeros(0, 5)))]
    tasd = one_term(task, region, T=2,
                    weight_temperature=5 if task == 'reg' else None)
    value = term_value(tasd, task, logits_S, logits_T, boxes)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert all(torch.isfinite(t.grad).all() for t in logits_S)
    if scenario == 'empty_gt' and region != 'teacher_score':
        assert value.item() == 0


def random_head_outputs(seed, sizes=((16, 16), (8, 8), (4, 4), (2, 2),
                                     (1, 1))):
    gen = torch.Generator().manual_seed(seed)
    outputs = {}
    for name, channels in (('reg', 4 * 17), ('cls', 3)):
        outputs[name] = ([torch.randn(2, channels, *s, generator=gen)
                          for s in sizes],
                         [torch.randn(2, channels, *s, generator=gen)
                          for s in sizes])
    return outputs


def random_gt(seed, num_boxes=4, size=128):
    gen = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(2):
        centres = torch.rand(num_boxes, 2, generator=gen) * size * 0.6 + \
            size * 0.2
        sides = torch.rand(num_boxes, 2, generator=gen) * size * 0.3 + 8
        batch.append(gt(torch.cat([centres - sides / 2, centres + sides / 2],
                                  dim=1),
                        torch.randint(3, (num_boxes, ), generator=gen)))
    return batch


def test_tasd_assigns_each_region_once_and_each_term_as_alone(monkeypatch):
    from mmrskd.models.task_modules import TASDRegionAssigner
    assigned = []
    assign = TASDRegionAssigner._gt_region

    def counting(self, region, *args):
        assigned.append(region)
        return assign(self, region, *args)

    monkeypatch.setattr(TASDRegionAssigner, '_gt_region', counting)
    terms = dict(
        loss_ld=dict(task='reg', region='pos', T=10, weight_temperature=5,
                     loss_weight=0.025),
        loss_ld_vlr=dict(task='reg', region='vlr', T=10,
                         weight_temperature=5, loss_weight=0.025),
        loss_kd=dict(task='cls', region='pos', T=2, loss_weight=0.5),
        loss_kd_vlr=dict(task='cls', region='vlr', T=2, loss_weight=0.5))
    tasd = build_tasd(terms)
    outputs = random_head_outputs(0)
    metas = [dict(pad_shape=(128, 128))] * 2
    batch_gt = random_gt(1)
    values = tasd(*outputs['cls'], batch_gt, metas, *outputs['reg'])
    assert list(values) == list(terms)
    assert assigned == ['pos', 'vlr']  # one assignment per region
    for name, cfg in terms.items():
        alone = build_tasd({name: cfg})
        kwargs = {} if cfg['task'] == 'cls' else dict(
            reg_logits_S=outputs['reg'][0], reg_logits_T=outputs['reg'][1])
        expected = alone(*outputs['cls'], batch_gt, metas, **kwargs)
        assert torch.equal(values[name], expected[name]), name
        assert values[name] > 0, name
    # the next step's GT gets its own regions
    assigned.clear()
    moved = random_gt(1)
    moved[0].bboxes[:, :2] += 16
    after = tasd(*outputs['cls'], moved, metas, *outputs['reg'])
    assert assigned == ['pos', 'vlr']
    assert not torch.equal(values['loss_kd'], after['loss_kd'])


def test_tasd_precomputed_regions_give_the_forwards_terms(monkeypatch):
    from mmrskd.models.task_modules import TASDRegionAssigner
    tasd = build_tasd(LTD_TERMS)
    outputs = random_head_outputs(0)
    metas = [dict(pad_shape=(128, 128))] * 2
    batch_gt = random_gt(1)
    expected = tasd(*outputs['cls'], batch_gt, metas, *outputs['reg'])
    # from the teacher's class logits and the batch alone
    precomputed = tasd.precompute(outputs['cls'][1], batch_gt, metas)
    assert set(precomputed) == {'regions'}
    monkeypatch.setattr(TASDRegionAssigner, '__call__', None)  # not again
    values = tasd(*outputs['cls'], batch_gt, metas, *outputs['reg'],
                  **precomputed)
    assert list(values) == list(LTD_TERMS)
    for term in LTD_TERMS:
        assert torch.equal(values[term], expected[term]), term


def test_tasd_levels_in_one_divergence_match_the_per_level_sum():
    from mmrskd.models.losses.ltd_tasd_loss import row_weights
    torch.manual_seed(0)
    sizes = [(4, 4), (2, 2), (1, 1)]
    anchors = dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                   octave_base_scale=8, scales_per_octave=1,
                   strides=[8, 16, 32])
    masks = [torch.rand(2, h * w) > 0.4 for h, w in sizes]
    masks[2][:] = False  # a level without rows
    for task, channels, temperature in (('reg', 4 * 17, 5), ('cls', 3, 2)):
        tasd = fixed_region(
            one_term(task, 'vlr', prior_generator=anchors,
                     weight_temperature=temperature), 'vlr', masks)
        logits_S = [torch.randn(2, channels, *s) for s in sizes]
        logits_T = [torch.randn(2, channels, *s) for s in sizes]
        value = term_value(tasd, task, logits_S, logits_T,
                           [gt(torch.zeros(0, 4))] * 2)
        expected = 0
        for level_S, level_T, mask in zip(logits_S, logits_T, masks):
            rows_S = tasd._to_rows(level_S, task)[mask]
            rows_T = tasd._to_rows(level_T, task)[mask]
            if task == 'reg':
                rows_S, rows_T = rows_S.reshape(-1, 17), rows_T.reshape(-1, 17)
            expected = expected + tasd.divergences['loss_term'](
                rows_S, rows_T,
                weight=row_weights(rows_T, task, temperature),
                avg_factor=16)
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7)


def test_tasd_rotated_atss_computes_only_the_candidates_ious():
    """The candidate-only assignment is mmrotate's: random GT (equal
    centres, so distance ties, included) and a rendered dense scene."""
    from mmrotate.models.task_modules.assigners import RotatedATSSAssigner

    from mmrskd.models.task_modules import CandidateRotatedATSSAssigner
    anchors = TASK_UTILS.build(
        dict(type='mmdet.AnchorGenerator', octave_base_scale=4,
             scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
             strides=[8, 16, 32, 64, 128]))
    level_priors = anchors.grid_priors([(16, 16), (8, 8), (4, 4), (2, 2),
                                        (1, 1)], device='cpu')
    priors = HorizontalBoxes(torch.cat(level_priors)).convert_to('rbox')
    counts = [len(p) for p in level_priors]
    reference = RotatedATSSAssigner(
        9, iou_calculator=dict(type='mmrotate.RBboxOverlaps2D'))
    ours = CandidateRotatedATSSAssigner(9)
    gen = torch.Generator().manual_seed(0)
    cases = []
    for trial in range(8):
        num_gt = 1 + trial * 2
        boxes = torch.cat([
            torch.rand(num_gt, 2, generator=gen) * 128,
            torch.rand(num_gt, 2, generator=gen) * 80 + 2,
            (torch.rand(num_gt, 1, generator=gen) - 0.5) * 3.2
        ], dim=1)
        if num_gt > 1:
            boxes[1, :2] = boxes[0, :2]  # equal centres: distance ties
        cases.append((priors, counts, gt(
            RotatedBoxes(boxes), torch.randint(5, (num_gt, ),
                                               generator=gen))))
    dense_priors, dense_counts, dense_gt = dense_scene_vlr_inputs()
    cases.append((HorizontalBoxes(dense_priors).convert_to('rbox'),
                  dense_counts, dense_gt))
    num_positives = 0
    for case_priors, case_counts, gt_instances in cases:
        expected = reference.assign(InstanceData(priors=case_priors),
                                    case_counts, gt_instances)
        result = ours.assign(InstanceData(priors=case_priors), case_counts,
                             gt_instances)
        assert torch.equal(result.gt_inds, expected.gt_inds)
        assert torch.equal(result.max_overlaps, expected.max_overlaps)
        assert torch.equal(result.labels, expected.labels)
        num_positives += int((expected.gt_inds > 0).sum())
    assert num_positives > 100


def test_atss_candidates_distances_are_mmrotates():
    from mmrotate.models.task_modules.assigners.rotated_atss_assigner import \
        bbox_center_distance
    priors, counts, boxes = dense_scene_vlr_inputs()
    rotated = HorizontalBoxes(priors).convert_to('rbox')
    for prior_boxes in (HorizontalBoxes(priors), rotated):
        candidates = ATSSCandidates(prior_boxes, boxes.bboxes, counts)
        assert torch.equal(candidates.distances,
                           bbox_center_distance(boxes.bboxes, rotated))


def test_tasd_regions_share_one_atss_search_per_image(monkeypatch):
    """With rotated GT, 'pos' and 'vlr' of an image start from one search:
    the distances once, the candidates' kernel IoUs once; the regions are
    those of each assigner with its own search."""
    detector = MODELS.build(tiny_rotated_retinanet_cfg())
    _, samples = scene_batch(detector, num_images=2, seed=3)
    batch_gt = [sample.gt_instances for sample in samples]
    assigner = region_assigner(prior_generator=dict(
        type='mmdet.AnchorGenerator', octave_base_scale=4,
        scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
        strides=[8, 16, 32, 64, 128]))
    sizes = [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    priors, counts, _ = assigner.priors(sizes, 2, None, 'cpu')
    searches, candidate_calls = [], []
    candidates = ATSSCandidates.candidates

    def counting(self, topk):
        searches.append(id(self))
        candidate_calls.append((id(self), topk, topk in self._by_topk))
        return candidates(self, topk)

    monkeypatch.setattr(ATSSCandidates, 'candidates', counting)
    regions = assigner(['pos', 'vlr'], sizes, batch_gt)
    assert len(set(searches)) == 2  # one per image
    assert [cached for _, _, cached in candidate_calls] == [
        False, False, True, True]  # pos computes, vlr reuses
    rotated = HorizontalBoxes(priors).convert_to('rbox')
    for img, gt_instances in enumerate(batch_gt):
        pos = assigner.rbox_assigner.assign(InstanceData(priors=rotated),
                                            counts, gt_instances)
        vlr = assigner.vlr_assigner.assign(InstanceData(priors=priors),
                                           counts, gt_instances)
        assert torch.equal(torch.cat(regions['pos'], dim=1)[img],
                           pos.gt_inds > 0)
        assert torch.equal(torch.cat(regions['vlr'], dim=1)[img],
                           vlr.gt_inds > 0)
        assert (vlr.gt_inds > 0).sum() > 50 and (pos.gt_inds > 0).sum() > 50


def test_tasd_errors_are_one_line():
    with pytest.raises(MMRSKDError, match='teacher_score'):
        one_term('reg', 'teacher_score')
    with pytest.raises(MMRSKDError, match='contains "loss"'):
        build_tasd(dict(kd=dict(task='cls', region='pos')))
    with pytest.raises(MMRSKDError, match='weight_temp'):
        build_tasd(dict(loss_kd=dict(task='cls', region='pos',
                                     weight_temp=5)))
    tasd = one_term('reg', 'pos')
    cls_logits = [torch.zeros(1, 3, 2, 2)] * 5
    with pytest.raises(MMRSKDError, match='reg_logits_S') as error:
        tasd(cls_logits, cls_logits, [gt(torch.zeros(0, 4))])
    assert '\n' not in str(error.value)
    with pytest.raises(MMRSKDError, match='reg_max') as error:
        term_value(tasd, 'reg', [torch.zeros(1, 12, 2, 2)] * 5,
                   [torch.zeros(1, 12, 2, 2)] * 5, [gt(torch.zeros(0, 4))])
    assert '\n' not in str(error.value)
    with pytest.raises(MMRSKDError, match='prior_generator'):
        term_value(tasd, 'reg', [torch.zeros(1, 68, 2, 2)],
                   [torch.zeros(1, 68, 2, 2)], [gt(torch.zeros(0, 4))])


# -------------------------------------------------------------- training
ROTATED_LTD = ('configs/ltd/ltd_rotated-retinanet_r18-w16_rotated-retinanet'
               '_r18-w16-24e_12e_synthetic-dota.py')


def test_distiller_assigns_tasd_regions_before_the_students_forward():
    cfg = Config.fromfile(osp.join(REPO, ROTATED_LTD))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    model.train()
    assert model.precomputing_losses == ['loss_tasd']
    tasd = model.distill_losses['loss_tasd']
    calls = []

    def recorded(name, run):
        def call(*args, **kwargs):
            calls.append((name, sorted(kwargs)))
            return run(*args, **kwargs)
        return call

    model.student.loss = recorded('student', model.student.loss)
    tasd.precompute = recorded('precompute', tasd.precompute)
    tasd.forward = recorded('tasd', tasd.forward)
    inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                 rotated=True, seed=0)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)
    losses = model.loss(**data)
    assert [name for name, _ in calls] == ['precompute', 'student', 'tasd']
    assert calls[0][1] == ['batch_gt_instances', 'batch_img_metas',
                           'cls_logits_T']
    assert 'regions' in calls[2][1]
    # the same terms as when the loss assigns its regions itself
    model.precomputing_losses = []
    alone = model.loss(**data)
    assert 'regions' not in calls[-1][1]
    for term in ('loss_kd', 'loss_kd_vlr'):
        assert losses[term] > 0
        torch.testing.assert_close(losses[term], alone[term], rtol=0,
                                   atol=0)


def test_distiller_leaves_precompute_to_the_loss_on_student_sources():
    cfg = Config.fromfile(osp.join(REPO, ROTATED_LTD))
    cfg.model.teacher_ckpt = None
    # the regions from the student's logits: only after its forward
    cfg.model.loss_mappings.loss_tasd.cls_logits_T = 's_head[0]'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    assert model.precomputing_losses == []


@pytest.mark.parametrize('config,rotated,terms', [
    ('configs/ltd/ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu.py', False,
     ('loss_att', 'loss_ccd', 'loss_ld', 'loss_ld_vlr')),
    (ROTATED_LTD, True, ('loss_att', 'loss_ccd', 'loss_kd', 'loss_kd_vlr')),
])
def test_cpu_config_trains_two_iterations(config, rotated, terms):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    lic = model.distill_losses['loss_ccd'].blocks[0].calibrate[0]
    offsets_before = lic.offset_conv.weight.detach().clone()
    for step in range(2):
        inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                     rotated=rotated, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper)
        for term in terms:
            assert term in log and torch.isfinite(log[term]), term
        assert all(log[term] > 0 for term in terms)
    # the CCD modules live in the distiller and are trained with it
    assert not torch.equal(lic.offset_conv.weight, offsets_before)
