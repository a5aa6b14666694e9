"""DKED: feature correlation, direction-adaptive feature response and
teacher-bounded prediction losses, the shipped CPU configs training through
the distiller, and a released student without any DKED module."""
import importlib.util
import math
import os.path as osp
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.engine.hooks import DDCTemperatureHook
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.testing import demo_batch
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC_GGHL = ('configs/dked/dked_lodet_mobilenetv2-w0.5_gghl_'
                  'cspdarknet-w0.25_12e_synthetic-dota.py')
SYNTHETIC_RETINANET = ('configs/dked/dked_rotated-retinanet_r18-w16_'
                       'rotated-retinanet_r18-w16-24e_12e_synthetic-dota.py')


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def bce(p, t):
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def bce_logit(x, t):
    return bce(1 / (1 + math.exp(-x)), t)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(MMRSKDError, match=match) as error:
        fn(*args, **kwargs)
    assert '\n' not in str(error.value)


# ----------------------------------------------------- feature correlation
def correlation_loss(**kwargs):
    return MODELS.build(dict(type='DKEDFeatureCorrelationLoss', **kwargs))


def reference_correlation_loss(feat_S, feat_T):
    """Identity embeddings, written out position by position."""
    total = 0.
    for f_s, f_t in zip(feat_S, feat_T):
        f_s, f_t = f_s.flatten(1).T.tolist(), f_t.flatten(1).T.tolist()
        num, channels = len(f_s), len(f_s[0])
        for i in range(num):
            row_s = softmax([sum(a * b for a, b in zip(f_s[i], f_s[j])) /
                             math.sqrt(channels) for j in range(num)])
            row_t = softmax([sum(a * b for a, b in zip(f_t[i], f_t[j])) /
                             math.sqrt(channels) for j in range(num)])
            total += sum((s - t)**2 for s, t in zip(row_s, row_t)) / num**2
    return total / len(feat_S)


def test_correlation_matches_hand_computation():
    feat_T = torch.tensor([[[[1., 2.]]]])  # N=1, C=1, two positions
    feat_S = torch.zeros(1, 1, 1, 2, requires_grad=True)
    e = math.e
    # R_T rows: softmax(1, 2), softmax(2, 4); R_S rows: (1/2, 1/2)
    expected = ((1 / (1 + e) - .5)**2 + (e / (1 + e) - .5)**2 +
                (1 / (1 + e**2) - .5)**2 + (e**2 / (1 + e**2) - .5)**2) / 4
    loss = correlation_loss(loss_weight=2.0)(feat_S, feat_T)
    assert loss.item() == pytest.approx(2 * expected, rel=1e-6)
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 2, 3), torch.randn(2, 3, 2, 3)]
    assert correlation_loss()(*feats).item() == pytest.approx(
        reference_correlation_loss(*feats), rel=1e-5)


def test_learned_embeddings_match_hand_computation():
    loss = correlation_loss(in_channels=2, teacher_embedding='identity')
    assert not hasattr(loss, 'teacher_embeddings')
    theta, phi = loss.student_embeddings[0]
    assert theta.out_channels == 1  # C' = C // 2
    with torch.no_grad():
        theta.weight.copy_(torch.tensor([1., 0.]).view(1, 2, 1, 1))
        phi.weight.copy_(torch.tensor([0., 1.]).view(1, 2, 1, 1))
        theta.bias.zero_()
        phi.bias.zero_()
    # positions (1, 0) and (0, 2): theta = (1, 0), phi = (0, 2)
    feat_S = torch.tensor([[[[1., 0.]], [[0., 2.]]]])
    # teacher positions (1, 1) and (1, 0), identity embeddings, sqrt(2)
    feat_T = torch.tensor([[[[1., 1.]], [[1., 0.]]]])
    rows_S = [softmax([0., 2.]), softmax([0., 0.])]
    rows_T = [softmax([2 / math.sqrt(2), 1 / math.sqrt(2)]),
              softmax([1 / math.sqrt(2), 1 / math.sqrt(2)])]
    expected = sum((s - t)**2 for row_s, row_t in zip(rows_S, rows_T)
                   for s, t in zip(row_s, row_t)) / 4
    assert loss(feat_S, feat_T).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('mode', ['frozen', 'trainable'])
def test_teacher_embedding_is_frozen_or_trained(mode):
    torch.manual_seed(0)
    loss = correlation_loss(in_channels=4, teacher_embedding=mode)
    feat_S = torch.randn(2, 4, 3, 3, requires_grad=True)
    loss(feat_S, torch.randn(2, 4, 3, 3)).backward()
    assert torch.isfinite(feat_S.grad).all() and feat_S.grad.abs().sum() > 0
    student_params = list(loss.student_embeddings.parameters())
    assert all(p.grad is not None for p in student_params)
    teacher_params = list(loss.teacher_embeddings.parameters())
    if mode == 'frozen':
        assert all(not p.requires_grad and p.grad is None
                   for p in teacher_params)
    else:
        assert all(p.grad is not None for p in teacher_params)
    # the frozen embeddings are part of the state dict (exact resume)
    assert any(k.startswith('teacher_embeddings')
               for k in loss.state_dict())


def test_pooled_and_sampled_correlations():
    torch.manual_seed(0)
    feat_S, feat_T = torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 4)
    pooled = correlation_loss(pool_size=(1, 2))(feat_S, feat_T)
    expected = reference_correlation_loss(
        F.avg_pool2d(feat_S, 2), F.avg_pool2d(feat_T, 2))
    assert pooled.item() == pytest.approx(expected, rel=1e-5)
    # a pool size above the map keeps it as it is
    assert correlation_loss(pool_size=8)(feat_S, feat_T).item() == \
        pytest.approx(reference_correlation_loss(feat_S, feat_T), rel=1e-5)

    torch.manual_seed(3)
    sampled = correlation_loss(num_samples=5)(feat_S, feat_T)
    torch.manual_seed(3)
    keep = torch.randperm(8)[:5]
    expected = reference_correlation_loss(
        feat_S.flatten(2)[..., keep].unsqueeze(2),
        feat_T.flatten(2)[..., keep].unsqueeze(2))
    assert sampled.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('scenario', ['extreme', 'identical'])
def test_correlation_is_finite_on_edge_cases(scenario):
    torch.manual_seed(0)
    loss = correlation_loss(in_channels=4)
    feat_T = torch.randn(2, 4, 3, 3)
    feat_S = feat_T.clone() if scenario == 'identical' else \
        torch.randn(2, 4, 3, 3).sign() * 1e4
    feat_T = feat_T.sign() * 1e4 if scenario == 'extreme' else feat_T
    feat_S.requires_grad_()
    value = loss(feat_S, feat_T)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(feat_S.grad).all()
    # identity embeddings on identical features: exactly nothing to learn
    same = correlation_loss()(feat_T, feat_T)
    assert same.item() == 0


def test_correlation_runs_in_fp32_under_autocast():
    torch.manual_seed(0)
    loss = correlation_loss(in_channels=4)
    feats = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    expected = loss(*feats)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss(*feats)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_correlation_errors_are_one_line():
    one_line_error('only one', correlation_loss, pool_size=4, num_samples=8)
    one_line_error('teacher_embedding', correlation_loss,
                   teacher_embedding='shared')
    one_line_error('in_channels', correlation_loss(in_channels=4),
                   torch.randn(1, 5, 2, 2), torch.randn(1, 5, 2, 2))
    one_line_error('connector', correlation_loss(), torch.randn(1, 3, 2, 2),
                   torch.randn(1, 4, 2, 2))


# -------------------------------------------------------- feature response
def response_loss(**kwargs):
    kwargs.setdefault('in_channels', 1)
    return MODELS.build(dict(type='DKEDFeatureResponseLoss', **kwargs))


def set_centre_kernel(ddc, value):
    """A DDC whose kernels are ``value`` at the centre: every rotation is
    the same kernel, so the layer multiplies by ``value``."""
    with torch.no_grad():
        ddc.base_weight.zero_()
        ddc.base_weight[..., 1, 1] = value
        ddc.bias.zero_()


def heatmap_targets(*levels):
    """``get_targets``-style per-level dicts holding only the heat map;
    the largest class value per cell is G."""
    return [dict(heatmap=torch.stack([g, g / 2], dim=-1)[None])
            for g in levels]


def test_response_matches_hand_computation():
    loss = response_loss(loss_weight=3.0)
    set_centre_kernel(loss.teacher_ddcs[0], 1.)
    set_centre_kernel(loss.student_ddcs[0], 2.)
    assert isinstance(loss.adapters[0], torch.nn.Identity)
    feat_T = torch.tensor([[[[1., 2., 3.]]]])
    feat_S = torch.tensor([[[[0., 1., 1.]]]], requires_grad=True)
    # Y'_T - Y'_S = (1, 2, 3) - 2 (0, 1, 1) = (1, 0, 1)
    g = torch.tensor([0.5, 1., 0.25])
    value = loss([feat_S], [feat_T], batch_targets=heatmap_targets(g))
    expected = (0.5**2 * 1 + 0 + 0.25**2 * 1) / 1.75
    assert value.item() == pytest.approx(3 * expected, rel=1e-6)
    # sum G below 1 is normalised by 1
    small = torch.tensor([0.5, 0., 0.])
    value = loss([feat_S], [feat_T], batch_targets=heatmap_targets(small))
    assert value.item() == pytest.approx(3 * 0.25, rel=1e-6)


def test_response_levels_sum_and_adapter_maps_widths():
    torch.manual_seed(0)
    loss = response_loss(in_channels=(4, 8), student_channels=(2, 8))
    assert loss.adapters[0].conv.in_channels == 2
    assert isinstance(loss.adapters[1], torch.nn.Identity)
    feats_S = [torch.randn(2, 2, 4, 4), torch.randn(2, 8, 2, 2)]
    feats_T = [torch.randn(2, 4, 4, 4), torch.randn(2, 8, 2, 2)]
    gs = [torch.rand(2, 16, 1), torch.rand(2, 4, 1)]
    targets = [dict(heatmap=g) for g in gs]
    loss.eval()  # BN of the adapter: the same statistics in every call
    total = loss(feats_S, feats_T, batch_targets=targets)
    per_level = 0
    for level in range(2):
        g = gs[level].view(2, 1, *feats_T[level].shape[2:])
        diff = loss.teacher_ddcs[level](feats_T[level]) - \
            loss.student_ddcs[level](loss.adapters[level](feats_S[level]))
        per_level += ((g * diff)**2).sum() / g.sum().clamp(min=1)
    torch.testing.assert_close(total, per_level)


def test_response_channel_norm_standardises_before_the_ddcs():
    torch.manual_seed(0)
    loss = response_loss(in_channels=4, feature_norm='channel')
    raw = response_loss(in_channels=4)
    raw.load_state_dict(loss.state_dict())
    feat_S, feat_T = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    targets = [dict(heatmap=torch.rand(2, 25, 1))]

    def standardise(feat):
        mean = feat.mean((2, 3), keepdim=True)
        var = feat.var((2, 3), unbiased=False, keepdim=True)
        return (feat - mean) / (var + 1e-6).sqrt()

    value = loss([feat_S], [feat_T], batch_targets=targets)
    torch.testing.assert_close(value, raw(
        [standardise(feat_S)], [standardise(feat_T)], batch_targets=targets))
    # the scale and offset of each teacher channel no longer matter
    scale = torch.tensor([1., 10., 0.1, 3.]).view(1, 4, 1, 1)
    torch.testing.assert_close(
        loss([feat_S], [feat_T * scale + 2], batch_targets=targets), value,
        rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('mode', ['frozen', 'trainable'])
def test_response_on_sparse_heatmap_equals_full_maps(mode):
    """The DDCs run only where G > 0: loss and gradients equal the
    straightforward full-map computation, and a level without any G > 0
    still gives its student-side parameters (zero) gradients."""
    torch.manual_seed(0)
    loss = response_loss(in_channels=(4, 8, 8), student_channels=(2, 8, 8),
                         teacher_ddc=mode, loss_weight=2.0)
    sizes = [(6, 5), (3, 3), (2, 2)]
    feats_S = [torch.randn(2, c, *s, requires_grad=True)
               for c, s in zip((2, 8, 8), sizes)]
    feats_T = [torch.randn(2, c, *s)
               for c, s in zip((4, 8, 8), sizes)]
    gs = [torch.rand(2, h * w, 1) for h, w in sizes]
    gs[0][gs[0] < 0.8] = 0  # about one cell in five
    gs[1][0] = 0  # nothing in the first image
    gs[2].zero_()  # nothing on the level
    targets = [dict(heatmap=g) for g in gs]
    loss.eval()  # BN of the adapter: the same statistics in every call
    params = [p for p in loss.parameters() if p.requires_grad]
    value = loss(feats_S, feats_T, batch_targets=targets)
    grads = torch.autograd.grad(value, feats_S + params)
    expected = 0
    for level, (feat_S, feat_T, g) in enumerate(zip(feats_S, feats_T, gs)):
        g = g.view(2, 1, *feat_T.shape[2:])
        diff = loss.teacher_ddcs[level](feat_T) - \
            loss.student_ddcs[level](loss.adapters[level](feat_S))
        expected = expected + ((g * diff)**2).sum() / g.sum().clamp(min=1)
    expected = 2.0 * expected
    expected_grads = torch.autograd.grad(expected, feats_S + params)
    assert value.item() > 0
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=0)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    empty_level = list(loss.student_ddcs[2].parameters())
    for param, grad in zip(params, grads[len(feats_S):]):
        if any(param is p for p in empty_level):
            assert not grad.any()


@pytest.mark.parametrize('mode', ['frozen', 'trainable'])
def test_response_trains_student_side_and_teacher_ddc_by_mode(mode):
    torch.manual_seed(0)
    loss = response_loss(in_channels=4, student_channels=2, teacher_ddc=mode)
    feat_S = torch.randn(2, 2, 4, 4, requires_grad=True)
    targets = [dict(heatmap=torch.rand(2, 16, 3))]
    loss([feat_S], [torch.randn(2, 4, 4, 4)], batch_targets=targets).backward()
    assert torch.isfinite(feat_S.grad).all() and feat_S.grad.abs().sum() > 0
    for module in (loss.adapters, loss.student_ddcs):
        assert all(p.grad is not None for p in module.parameters())
    teacher = list(loss.teacher_ddcs.parameters())
    if mode == 'frozen':
        assert all(p.grad is None and not p.requires_grad for p in teacher)
    else:
        assert all(p.grad is not None for p in teacher)


def gghl_gt(rboxes, labels):
    return InstanceData(
        bboxes=RotatedBoxes(
            torch.tensor(rboxes, dtype=torch.float32).view(-1, 5)),
        labels=torch.tensor(labels, dtype=torch.long))


def test_response_renders_gghl_heatmap_from_gt():
    """G rendered in the loss is the class-agnostic maximum of the GGHL
    assignment, the same as the GGHL head's targets give."""
    torch.manual_seed(0)
    gts = [gghl_gt([[20., 24., 30., 12., 0.4], [44., 40., 16., 10., -1.]],
                   [0, 2]),
           gghl_gt([], [])]
    sizes, strides = [(8, 8), (4, 4), (2, 2)], [8, 16, 32]
    loss = response_loss(in_channels=(2, 2, 2))
    feats_S = [torch.randn(2, 2, *s) for s in sizes]
    feats_T = [torch.randn(2, 2, *s) for s in sizes]
    metas = [dict(batch_input_shape=(64, 64))] * 2
    rendered = loss(feats_S, feats_T, batch_gt_instances=gts,
                    batch_img_metas=metas)
    assigner = TASK_UTILS.build(dict(type='GGHLAssigner', num_classes=3))
    targets = [
        dict(heatmap=torch.stack([
            assigner.assign(gt, sizes, strides)[level].heatmap for gt in gts
        ])) for level in range(3)
    ]
    # the centre cell of each object is 1; nothing in the empty image
    assert max(t['heatmap'][0].max() for t in targets) == 1
    assert max(t['heatmap'][1].max() for t in targets) == 0
    from_targets = loss(feats_S, feats_T, batch_targets=targets)
    torch.testing.assert_close(rendered, from_targets)
    with_strides = response_loss(in_channels=(2, 2, 2), strides=strides)
    with_strides.load_state_dict(loss.state_dict())
    torch.testing.assert_close(
        with_strides(feats_S, feats_T, batch_gt_instances=gts), rendered)


@pytest.mark.parametrize('scenario', ['empty_gt', 'extreme'])
def test_response_is_finite_on_edge_cases(scenario):
    torch.manual_seed(0)
    one_level = dict(type='GGHLAssigner', level_size_thresholds=(),
                     window_radius_max=(4, ))
    loss = response_loss(in_channels=4, student_channels=2,
                         assigner=one_level)
    scale = 1e4 if scenario == 'extreme' else 1.
    feat_S = (torch.randn(2, 2, 4, 4).sign() * scale).requires_grad_()
    feat_T = -torch.randn(2, 4, 4, 4).sign() * scale
    labels = torch.zeros(0, dtype=torch.long)
    gts = [InstanceData(bboxes=torch.zeros(0, 4), labels=labels)] * 2
    if scenario == 'extreme':
        gts = [gghl_gt([[16., 16., 20., 12., 0.3]], [0])] * 2
    value = loss([feat_S], [feat_T], batch_gt_instances=gts,
                 batch_img_metas=[dict(batch_input_shape=(32, 32))] * 2)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(feat_S.grad).all()
    if scenario == 'empty_gt':
        assert value.item() == 0  # G = 0: no object, no response to match
    else:
        assert value.item() > 0


def test_response_runs_in_fp32_under_autocast():
    torch.manual_seed(0)
    loss = response_loss(in_channels=4)
    args = ([torch.randn(2, 4, 4, 4)], [torch.randn(2, 4, 4, 4)])
    targets = [dict(heatmap=torch.rand(2, 16, 1))]
    expected = loss(*args, batch_targets=targets)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss(*args, batch_targets=targets)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_response_errors_are_one_line():
    loss = response_loss(in_channels=(4, 4))
    feats = [torch.randn(1, 4, 2, 2)] * 2
    one_line_error('heat map G', loss, feats, feats)
    one_line_error('levels', loss, feats[:1], feats[:1],
                   batch_targets=[dict(heatmap=torch.rand(1, 4, 1))])
    one_line_error('student_channels', loss, [torch.randn(1, 3, 2, 2)] * 2,
                   feats, batch_targets=heatmap_targets(*[torch.rand(4)] * 2))
    one_line_error('same batch', loss, feats, feats,
                   batch_targets=heatmap_targets(*[torch.rand(9)] * 2))
    one_line_error('teacher_ddc', response_loss, teacher_ddc='shared')
    one_line_error('one entry per FPN level', response_loss,
                   in_channels=(4, 4), student_channels=(2, 2, 2))


# -------------------------------------------------------------- prediction
GT_RATIO_LOGIT, OFF_RATIO_LOGIT = 0., 1.5  # area ratio 0.5 and 0.75


def prediction_targets():
    """One image, one 2x2 level at stride 8, positives at cells (0, 0) "A"
    and (0, 1) "B" (centres (4, 4), (12, 4)), each owning an 8 px square;
    class 0 of 2 with heat 1, area weight 1, offsets 0.25, ratio 0.5."""
    pos = torch.tensor([[True, True, False, False]])
    heatmap = torch.zeros(1, 4, 2)
    heatmap[0, :2, 0] = 1.
    bboxes = torch.zeros(1, 4, 4)
    bboxes[0, 0] = torch.tensor([0., 0., 8., 8.])
    bboxes[0, 1] = torch.tensor([8., 0., 16., 8.])
    return [dict(heatmap=heatmap, pos_mask=pos, bboxes=bboxes,
                 distances=4. * pos[..., None].float().expand(1, 4, 4),
                 orc=0.25 * pos[..., None].float().expand(1, 4, 4),
                 ratios=0.5 * pos.float(), area_weights=pos.float())]


def head_outputs(ratio_logits, cls_logits, obj_logit=0.):
    """Raw GGHLHead outputs whose boxes match the targets exactly except
    for the area ratio: ``ratio_logits`` for cells A and B."""
    cls = torch.tensor(cls_logits).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    bbox = torch.full((1, 4, 2, 2), math.log(4 / 8))
    orc = torch.full((1, 4, 2, 2), math.log(0.2575 / (1 - 0.2575)))
    ratio = torch.zeros(1, 1, 2, 2)
    ratio[0, 0, 0, 0], ratio[0, 0, 0, 1] = ratio_logits
    obj = torch.full((1, 1, 2, 2), obj_logit)
    return tuple([x.clone().requires_grad_()] for x in
                 (cls, bbox, orc, ratio, obj))


def prediction_loss(**kwargs):
    kwargs.setdefault('strides', (8, ))
    return MODELS.build(dict(type='DKEDPredictionLoss', **kwargs))


def expected_prediction_parts():
    """Hand values: student exact at A and 0.25 off in ratio at B, the
    teacher the other way round; JOL area weight 16, so the localisation
    errors are e_S = (0, 1), e_T = (1, 0); both have 2 positives."""
    delta_sq = 0.25**2
    q_S = [1., math.exp(-delta_sq)]   # exp(-(iou + obb + area)) errors
    q_T = [math.exp(-delta_sq), 1.]
    # the student's JOL box loss at B: M A w_dyn 16 delta^2, w_dyn =
    # (sigmoid(0) + heat 1) / 2
    jol_box = (0.75 * 16 * delta_sq) / 2
    bounded = jol_box  # only B, where the teacher is better
    smooth_pos, smooth_neg = 1 - 0.01 + 0.01 / 2, 0.01 / 2
    hard = sum(bce(0.5 * q, smooth_pos) + bce_logit(0.3, smooth_neg)
               for q in q_S) / 2
    soft = sum(bce(0.5 * qs, sigmoid(1.) * qt) + bce_logit(0.3, sigmoid(-1.))
               for qs, qt in zip(q_S, q_T)) / 2
    return dict(jol_box=jol_box, bounded=bounded, hard=hard, soft=soft)


@pytest.mark.parametrize('combine', ['reweight', 'additive', 'full'])
@pytest.mark.parametrize('lam', [0.5, 0.2])
def test_prediction_matches_hand_computation(combine, lam):
    outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), [0., 0.3])
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), [1., -1.])
    loss = prediction_loss(lam=lam, combine=combine, loss_weight=2.)
    value = loss(outs_S, outs_T, prediction_targets())
    parts = expected_prediction_parts()
    expected = {
        'reweight': lam * parts['bounded'] + (1 - lam) * (
            parts['soft'] - parts['hard']),
        'additive': lam * parts['bounded'] + (1 - lam) * parts['soft'],
        'full': parts['jol_box'] + lam * parts['bounded'] +
        lam * parts['hard'] + (1 - lam) * parts['soft'],
    }[combine]
    assert value.item() == pytest.approx(2 * expected, rel=1e-5, abs=1e-6)
    value.backward()
    assert all(x[0].grad is None for x in outs_T)  # the teacher is a target


def test_prediction_soft_term_can_leave_the_student_boxes_alone():
    # lam = 0, additive: the soft class term alone, whose gradient reaches
    # the student's area ratio at cell B only through s_loc
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), [1., -1.])
    values, ratio_grads = [], []
    for detach in (False, True):
        outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), [0., 0.3])
        loss = prediction_loss(lam=0., combine='additive',
                               detach_student_quality=detach)
        value = loss(outs_S, outs_T, prediction_targets())
        value.backward()
        values.append(value.item())
        ratio_grads.append(outs_S[3][0].grad[0, 0, 0, 1].item())
        if detach:
            assert all(x[0].grad is None or not x[0].grad.any()
                       for x in outs_S[1:4])
    assert values[0] == pytest.approx(values[1], rel=1e-7)
    assert values[0] == pytest.approx(expected_prediction_parts()['soft'],
                                      rel=1e-5)
    # d soft / d q_S(B) by hand: -(t / p - (1 - t) / (1 - p)) * 0.5 / 2
    # (one class-0 BCE, p = 0.5 q_S, t = sigmoid(1) q_T(B), q_T(B) = 1,
    # mean over the 2 positives), chained to the ratio logit through
    # q_S = exp(-(r - 0.5)^2) and the hard sigmoid r = x / 6 + 0.5
    r = OFF_RATIO_LOGIT / 6 + 0.5
    q_S = math.exp(-(r - 0.5)**2)
    p, t = 0.5 * q_S, sigmoid(1.)
    d_q = -(t / p - (1 - t) / (1 - p)) * 0.5 / 2
    d_r = d_q * q_S * (-2 * (r - 0.5)) / 6
    assert ratio_grads[0] == pytest.approx(d_r, rel=1e-4)
    assert ratio_grads[1] == 0


def test_prediction_gate_follows_delta():
    outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), [0., 0.3])
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), [0., 0.3])
    targets = prediction_targets()
    # with lam = 1 only the bounded box term is left
    bounded = expected_prediction_parts()['bounded']
    # e_S(B) = 1, e_T(B) = 0: the gate compares the errors without JOL's
    # location weights (the student's weighted box loss at B is only 0.75)
    for delta, gated in ((0., True), (-0.9, True), (-1.5, False)):
        loss = prediction_loss(lam=1., delta=delta, combine='additive')
        value = loss(outs_S, outs_T, targets).item()
        assert value == pytest.approx(bounded if gated else 0., abs=1e-6)
    # a teacher as bad as the student everywhere gates at delta > 0 only
    same = prediction_loss(lam=1., combine='additive')
    assert same(outs_S, outs_S, targets).item() == pytest.approx(0, abs=1e-7)
    same = prediction_loss(lam=1., delta=0.1, combine='additive')
    assert same(outs_S, outs_S, targets).item() == pytest.approx(bounded)


def test_prediction_distils_objectness_on_request():
    outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), [0., 0.3])
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), [1., -1.],
                          obj_logit=2.)
    targets = prediction_targets()
    base = prediction_loss()(outs_S, outs_T, targets).item()
    with_obj = prediction_loss(distill_objectness=True)(
        outs_S, outs_T, targets).item()

    def focal(x, t):
        return bce_logit(x, t) * (t - sigmoid(x))**2

    q_S = [1., math.exp(-0.25**2)]
    # JOL: fg = 2 M Focal(o, 0.995) (heat + q_S) / 2, bg = 2 (1 - M)
    # Focal(o, 0.005); soft: 2 Focal(o_S, sigmoid(o_T)) on all 4 cells
    hard_obj = sum(2 * focal(0., 0.995) * (1 + q) / 2 for q in q_S) + \
        2 * 2 * focal(0., 0.005)
    soft_obj = 4 * 2 * focal(0., sigmoid(2.))
    assert with_obj - base == pytest.approx(
        0.5 * (soft_obj - hard_obj) / 2, rel=1e-5)


def tiny_gghl_head(num_classes=3):
    return MODELS.build(dict(
        type='GGHLHead', num_classes=num_classes, in_channels=(4, 4, 4),
        feat_channels=(4, 4, 4),
        train_cfg=dict(assigner=dict(type='GGHLAssigner'))))


def test_reweight_turns_the_detection_loss_into_the_papers_objective():
    """Detection loss + 'reweight' = L_loc + L_cls ('full') + the
    objectness terms, on real GGHL heads and GGHL targets."""
    torch.manual_seed(0)
    head_S, head_T = tiny_gghl_head(), tiny_gghl_head()
    feats = [torch.randn(2, 4, s, s) for s in (8, 4, 2)]
    gts = [gghl_gt([[20., 24., 30., 12., 0.4], [44., 40., 16., 10., -1.]],
                   [0, 2]),
           gghl_gt([[30., 30., 40., 20., 1.2]], [1])]
    outs_S, outs_T = head_S(feats), head_T(feats)
    detection = head_S.loss_by_feat(*outs_S, gts, [{}] * 2)
    targets = head_S.get_targets([(8, 8), (4, 4), (2, 2)], gts, 'cpu')
    assert sum(t['pos_mask'].sum() for t in targets) > 0
    kd = {mode: prediction_loss(combine=mode, strides=(8, 16, 32))(
        outs_S, outs_T, targets) for mode in ('reweight', 'full')}
    objectness = detection['loss_fg'] + detection['loss_bg']
    torch.testing.assert_close(
        sum(detection.values()) + kd['reweight'], kd['full'] + objectness)


@pytest.mark.parametrize('scenario', ['no_positives', 'extreme'])
def test_prediction_is_finite_on_edge_cases(scenario):
    targets = prediction_targets()
    cls_S, cls_T = [0., 0.3], [1., -1.]
    if scenario == 'no_positives':
        targets[0]['pos_mask'][:] = False
        targets[0]['heatmap'][:] = 0
    else:
        cls_S, cls_T = [1e4, -1e4], [-1e4, 1e4]
    outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), cls_S, 1e4)
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), cls_T, -1e4)
    for combine in ('reweight', 'additive', 'full'):
        value = prediction_loss(combine=combine, distill_objectness=True)(
            outs_S, outs_T, targets)
        assert torch.isfinite(value)
        if scenario == 'no_positives' and combine != 'full':
            # only the (soft minus hard) objectness of the background
            assert value.item() != 0
    # the soft targets keep finite gradients even for saturated logits
    value = prediction_loss(combine='additive', distill_objectness=True)(
        outs_S, outs_T, targets)
    value.backward()
    assert all(torch.isfinite(x[0].grad).all() for x in outs_S)


def test_prediction_runs_in_fp32_under_autocast():
    outs_S = head_outputs((GT_RATIO_LOGIT, OFF_RATIO_LOGIT), [0., 0.3])
    outs_T = head_outputs((OFF_RATIO_LOGIT, GT_RATIO_LOGIT), [1., -1.])
    loss = prediction_loss(distill_objectness=True)
    expected = loss(outs_S, outs_T, prediction_targets())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss(outs_S, outs_T, prediction_targets())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_prediction_errors_are_one_line():
    outs = head_outputs((0., 0.), [0., 0.])
    targets = prediction_targets()
    loss = prediction_loss()
    one_line_error('GGHLHead output', loss, outs[:4], outs, targets)
    one_line_error('GGHLHead output', prediction_loss(strides=(8, 16)),
                   outs, outs, targets)
    wider = tuple([x[0].expand(2, *x[0].shape[1:])] for x in outs)
    one_line_error('differ', loss, outs, wider, targets)
    one_line_error('get_targets', loss, outs, outs, [])
    one_line_error('same batch', loss, wider, wider, targets)
    one_line_error('lam', prediction_loss, lam=1.5)
    one_line_error('combine', prediction_loss, combine='sum')


# ------------------------------------------------- through the distiller
def build_distiller(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    return cfg, model


def train_two_iterations(cfg, model, terms, num_classes=5):
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    for step in range(2):
        inputs, samples = demo_batch(model.student, size=96,
                                     num_classes=num_classes, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper)
        for term in terms:
            assert term in log and torch.isfinite(log[term]), term
    return log


@pytest.fixture(scope='module')
def trained_gghl_distiller():
    cfg, model = build_distiller(SYNTHETIC_GGHL)
    drfd = model.distill_losses['loss_drfd']
    before = {
        'student_ddc': drfd.student_ddcs[0].base_weight.detach().clone(),
        'teacher_ddc': drfd.teacher_ddcs[0].base_weight.detach().clone(),
        'phi': drfd.adapters[0].conv.weight.detach().clone(),
        'theta_S': model.distill_losses['loss_fcd'].student_embeddings[0][0]
        .weight.detach().clone(),
    }
    log = train_two_iterations(cfg, model,
                               ('loss_fcd', 'loss_drfd', 'loss_pred'))
    return cfg, model, before, log


def test_synthetic_gghl_config_trains_two_iterations(trained_gghl_distiller):
    _, model, before, log = trained_gghl_distiller
    assert log['loss_fcd'] > 0 and log['loss_drfd'] > 0
    drfd = model.distill_losses['loss_drfd']
    # the training-branch modules train with the student ...
    assert not torch.equal(drfd.student_ddcs[0].base_weight,
                           before['student_ddc'])
    assert not torch.equal(drfd.adapters[0].conv.weight, before['phi'])
    assert not torch.equal(
        model.distill_losses['loss_fcd'].student_embeddings[0][0].weight,
        before['theta_S'])
    # ... the frozen teacher DDC does not
    assert torch.equal(drfd.teacher_ddcs[0].base_weight,
                       before['teacher_ddc'])
    # the DDC temperature hook finds the DDCs inside the loss
    runner = SimpleNamespace(model=model, hooks=[], epoch=2)
    layers = list(DDCTemperatureHook._ddc_layers(runner))
    assert len(layers) == 6
    DDCTemperatureHook().before_train_epoch(runner)
    assert all(layer.temperature.item() == 28 for layer in layers)


def test_synthetic_retinanet_config_trains_two_iterations():
    cfg, model = build_distiller(SYNTHETIC_RETINANET)
    log = train_two_iterations(cfg, model, ('loss_fcd', 'loss_drfd'))
    assert log['loss_drfd'] > 0


def load_tool(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_released_student_is_exactly_the_plain_student(
        trained_gghl_distiller, tmp_path):
    from mmrskd.models.utils.complexity import model_complexity
    from mmrskd.utils.checkpoint import safe_load
    convert = load_tool('tools/model_converters/distill_to_student.py').main
    cfg, model, _, _ = trained_gghl_distiller
    src, dst = tmp_path / 'distiller.pth', tmp_path / 'student.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), src)
    convert([str(src), str(dst)])
    student_state = safe_load(str(dst))['state_dict']

    student_cfg = Config.fromfile(osp.join(
        REPO, 'configs/dked/lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_'
        '12e_synthetic-dota.py')).model
    plain = MODELS.build(student_cfg)
    plain.load_state_dict(student_state, strict=True)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, model.student.state_dict()[key])
    assert not any('ddc' in k or 'embedding' in k for k in student_state)

    plain_params = sum(p.numel() for p in plain.parameters())
    distiller_params = sum(p.numel() for p in model.parameters())
    assert distiller_params > plain_params  # DDCs, adapters, embeddings
    assert sum(v.numel() for v in student_state.values()) == sum(
        v.numel() for v in plain.state_dict().values())
    reference = model_complexity(student_cfg, (96, 96))
    assert reference['params'] == plain_params
    counted = model_complexity(model.student, (96, 96))
    assert (counted['flops'], counted['params']) == (reference['flops'],
                                                     reference['params'])
