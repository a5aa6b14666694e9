"""CSAKD: the AAWM-weighted cross-supervision loss, the AGKA attention
alignment loss, teacher-moment alignment of cross forwards, and the shipped
CPU configs training through the distiller."""
import math
import os.path as osp
import warnings

import pytest
import torch
import torch.nn.functional as F

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData
from mmdet.structures.bbox import HorizontalBoxes

from mmrskd.models.distillers import align_moments
from mmrskd.registry import MODELS
from mmrskd.testing import demo_batch
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LOG3 = math.log(3)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def cross_loss(**kwargs):
    cfg = dict(type='CSAKDCrossSupervisionLoss', aawm=False)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def two_bin_ld(loss_weight=1.0):
    # 2 bins per side: reg maps have 4 * 2 channels
    return dict(type='LDLoss', T=1.0, reg_max=1, class_reduction='sum',
                loss_weight=loss_weight)


# ------------------------------------------------- cross supervision (AAWM)
def one_level_pair():
    """N=1, one class, H=1, W=2; 2 DFL bins per side, equal on all sides.

    Position 0: teacher logit 0 (p=1/2), student log 3 (p=3/4); teacher bins
    (0, 0), student bins (log 3, 0). Position 1: teacher log 3 (p=3/4),
    student 0 (p=1/2); identical bins.
    """
    cls_S = torch.tensor([[[[LOG3, 0.]]]], requires_grad=True)
    cls_T = torch.tensor([[[[0., LOG3]]]])
    side_S = torch.tensor([[LOG3, 0.], [0.3, -0.2]])  # (position, bin)
    side_T = torch.tensor([[0., 0.], [0.3, -0.2]])

    def bins(side):  # -> (1, 4 * 2, 1, 2), side-major like LDLoss expects
        return side.t().repeat(4, 1).reshape(1, 8, 1, 2).clone()

    return cls_S, cls_T, bins(side_S).requires_grad_(), bins(side_T)


def hand_values():
    # KD-QFL: |p_S - p_T| * BCE(z_S, p_T), summed over positions
    qfl = 0.25 * -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) \
        + 0.25 * math.log(2)
    score_sum = 0.5 + 0.75  # teacher max class probabilities
    # KL((1/2, 1/2) || (3/4, 1/4)) per side at position 0, weight 1/2
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    return qfl, score_sum, kl


def test_cross_loss_matches_hand_computation():
    cls_S, cls_T, reg_S, reg_T = one_level_pair()
    qfl, score_sum, kl = hand_values()
    loss = cross_loss(loss_reg=two_bin_ld(), loss_weight=2.0)
    value = loss(cls_S, cls_T, reg_S, reg_T)
    # box term: sum_pos score * (sum over 4 sides of KL) / (4 * S)
    expected = qfl / score_sum + 0.5 * 4 * kl / (4 * score_sum)
    assert value.item() == pytest.approx(2.0 * expected, rel=1e-6)
    value.backward()
    assert cls_S.grad.abs().sum() > 0 and reg_S.grad.abs().sum() > 0


def test_cross_loss_positions_normaliser_is_unweighted_mean():
    cls_S, cls_T, reg_S, reg_T = one_level_pair()
    qfl, _, kl = hand_values()
    loss = cross_loss(loss_reg=two_bin_ld(), normalizer='positions')
    expected = qfl / 2 + 4 * kl / (4 * 2)
    assert loss(cls_S, cls_T, reg_S, reg_T).item() == pytest.approx(
        expected, rel=1e-6)


def test_cross_loss_default_reg_is_yolov8_dfl_kl_weight_4():
    torch.manual_seed(0)
    cls_S, cls_T = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    reg_S, reg_T = torch.randn(2, 64, 2, 2), torch.randn(2, 64, 2, 2)
    value = cross_loss(loss_cls=dict(type='KDQualityFocalLoss',
                                     loss_weight=0.0))(
        cls_S, cls_T, reg_S, reg_T)
    # reference: KL over 16 bins per side, teacher-score weighted, x4
    score = cls_T.sigmoid().amax(1)  # (N, H, W)
    side_S = reg_S.reshape(2, 4, 16, 2, 2)
    side_T = reg_T.reshape(2, 4, 16, 2, 2)
    kl = (side_T.softmax(2) *
          (side_T.log_softmax(2) - side_S.log_softmax(2))).sum(2).sum(1)
    expected = 4.0 * (score * kl).sum() / (4 * score.sum())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_cross_loss_distance_mode_is_giou_of_the_spanned_boxes():
    # student distances 1 on every side, teacher 2: the boxes are nested,
    # IoU = 4 / 16, GIoU = IoU, loss 0.75 at the single position, weighted
    # by the teacher score p and divided by max(1, p) = 1
    cls_T = torch.tensor([[[[0.7]]]])
    score = sigmoid(0.7)
    reg_S = torch.ones(1, 4, 1, 1, requires_grad=True)
    reg_T = torch.full((1, 4, 1, 1), 2.0)
    loss = cross_loss(
        loss_cls=dict(type='KDQualityFocalLoss', loss_weight=0.0),
        loss_reg=dict(type='mmdet.GIoULoss', loss_weight=1.0),
        reg_mode='distance')
    value = loss(cls_T.clone(), cls_T, reg_S, reg_T)
    assert value.item() == pytest.approx(score * 0.75, rel=1e-5)
    # asymmetric sides: (l, t, r, b) = (1, 0, 1, 2) vs (0, 0, 2, 2); the
    # same boxes anywhere: [-1, 0, 1, 2] and [0, 0, 2, 2], IoU 2 / 6, hull
    # [-1, 0, 2, 2] of area 6
    reg_S = torch.tensor([1., 0., 1., 2.]).view(1, 4, 1, 1)
    reg_T = torch.tensor([0., 0., 2., 2.]).view(1, 4, 1, 1)
    assert loss(cls_T.clone(), cls_T, reg_S, reg_T).item() == pytest.approx(
        score * (1 - 2 / 6), rel=1e-5)


def test_aawm_weights_match_hand_computation():
    # level 0: GAP vectors parallel in both images, cos 1; level 1: cos 1 in
    # image 0 and -1 in image 1, batch mean 0
    feats_T = [torch.tensor([[1., 0.], [2., 0.]]).view(2, 2, 1, 1).expand(
        2, 2, 2, 2), torch.tensor([[0., 1.], [0., 1.]]).view(2, 2, 1, 1)]
    feats_S = [torch.tensor([[3., 0.], [1., 0.]]).view(2, 2, 1, 1).expand(
        2, 2, 2, 2), torch.tensor([[0., 2.], [0., -1.]]).view(2, 2, 1, 1)]
    weights = MODELS.get('CSAKDCrossSupervisionLoss').level_weights(
        feats_S, feats_T)
    torch.testing.assert_close(
        weights, torch.tensor([1 - sigmoid(1.), 0.5]))


def test_aawm_scales_each_level_and_is_detached():
    cls_S, cls_T, reg_S, reg_T = one_level_pair()
    # second level: identical cross and teacher predictions contribute 0
    # (the |p_S - p_T| factor) but count in the normaliser
    cls_2 = torch.full((1, 1, 1, 1), LOG3)
    reg_2 = torch.zeros(1, 8, 1, 1)
    plain = cross_loss(loss_reg=two_bin_ld())(
        [cls_S, cls_2], [cls_T, cls_2], [reg_S, reg_2], [reg_T, reg_2])
    qfl, score_sum, kl = hand_values()
    score_sum += 0.75
    assert plain.item() == pytest.approx(
        qfl / score_sum + 0.5 * kl / score_sum, rel=1e-6)
    feats_S = [torch.ones(1, 2, 1, 2, requires_grad=True),
               torch.tensor([1., 0.]).view(1, 2, 1, 1).requires_grad_()]
    feats_T = [torch.ones(1, 2, 1, 2), torch.tensor([0., 1.]).view(
        1, 2, 1, 1)]
    weighted = cross_loss(loss_reg=two_bin_ld(), aawm=True)(
        [cls_S, cls_2], [cls_T, cls_2], [reg_S, reg_2], [reg_T, reg_2],
        feats_S=feats_S, feats_T=feats_T)
    assert weighted.item() == pytest.approx(
        (1 - sigmoid(1.)) * plain.item(), rel=1e-6)
    weighted.backward()
    assert all(f.grad is None for f in feats_S)


@pytest.mark.parametrize('reg_mode', ['distribution', 'distance'])
@pytest.mark.parametrize('scenario', ['background', 'extreme', 'zero'])
def test_cross_loss_is_finite_on_edge_cases(reg_mode, scenario):
    torch.manual_seed(0)
    channels = 64 if reg_mode == 'distribution' else 4
    shapes = [(2, 3, 4, 4), (2, 3, 2, 2)]
    cls_T = [torch.randn(s) for s in shapes]
    cls_S = [torch.randn(s) for s in shapes]
    reg_T = [torch.rand(s[0], channels, *s[2:]) * 8 for s in shapes]
    reg_S = [torch.rand(s[0], channels, *s[2:]) * 8 for s in shapes]
    feats = [torch.randn(2, 5, *s[2:]) for s in shapes]
    if scenario == 'background':  # a teacher that sees nothing
        cls_T = [torch.full(s, -1e4) for s in shapes]
    elif scenario == 'extreme':
        cls_S = [c.sign() * 1e4 for c in cls_S]
        cls_T = [-c for c in cls_S]
        reg_S = [r * 1e4 for r in reg_S]
    else:  # all-zero features and distances (degenerate boxes, GAP 0)
        reg_S = [torch.zeros_like(r) for r in reg_S]
        reg_T = [torch.zeros_like(r) for r in reg_T]
        feats = [torch.zeros_like(f) for f in feats]
    cls_S = [c.requires_grad_() for c in cls_S]
    reg_S = [r.requires_grad_() for r in reg_S]
    loss_reg = dict(type='mmdet.GIoULoss') if reg_mode == 'distance' \
        else None
    kwargs = dict(reg_mode=reg_mode, aawm=True)
    if loss_reg:
        kwargs['loss_reg'] = loss_reg
    value = cross_loss(**kwargs)(cls_S, cls_T, reg_S, reg_T,
                                 feats_S=feats, feats_T=feats)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    for leaf in cls_S + reg_S:
        assert torch.isfinite(leaf.grad).all()


def test_cross_loss_errors_are_one_line():
    cls = torch.zeros(1, 3, 2, 2)
    cases = [
        (dict(), dict(cls_S=cls, cls_T=cls, reg_S=torch.zeros(1, 64, 3, 3),
                      reg_T=torch.zeros(1, 64, 3, 3)), 'same head'),
        (dict(aawm=True), dict(cls_S=cls, cls_T=cls,
                               reg_S=torch.zeros(1, 64, 2, 2),
                               reg_T=torch.zeros(1, 64, 2, 2)), 'feats_S'),
        (dict(reg_mode='distance', loss_reg=dict(type='mmdet.GIoULoss')),
         dict(cls_S=cls, cls_T=cls, reg_S=torch.zeros(1, 64, 2, 2),
              reg_T=torch.zeros(1, 64, 2, 2)), 'distance'),
        (dict(), dict(cls_S=cls, cls_T=cls[:, :2],
                      reg_S=torch.zeros(1, 64, 2, 2),
                      reg_T=torch.zeros(1, 64, 2, 2)), 'connector'),
    ]
    for build_kwargs, inputs, message in cases:
        with pytest.raises(MMRSKDError, match=message) as error:
            cross_loss(**build_kwargs)(**inputs)
        assert '\n' not in str(error.value)
    for bad in (dict(reg_mode='iou'), dict(normalizer='gt')):
        with pytest.raises(MMRSKDError):
            cross_loss(**bad)


# ------------------------------------------------------------------- AGKA
def agka(**kwargs):
    cfg = dict(type='CSAKDAttentionAlignmentLoss', in_channels=4)
    cfg.update(kwargs)
    loss = MODELS.build(cfg)
    # query reads teacher channel 0, key reads student channel 1
    with torch.no_grad():
        for projection, channel in ((loss.queries[0][0], 0),
                                    (loss.keys[0][0], 1)):
            projection.weight.zero_()
            projection.weight[0, channel] = 1.0
            projection.bias.zero_()
    return loss


def test_agka_matches_hand_computation():
    teacher = torch.tensor([1., 0., 0., 0.]).view(1, 4, 1, 1)
    student = torch.tensor([1., 1., 0., 0.]).view(1, 4, 1, 1)
    a = sigmoid(1.0)  # q = 1, k = 1
    # s' = (1 + A) s, error t - s' = (-A, -(1 + A), 0, 0)
    assert agka()(student, teacher).item() == pytest.approx(
        a**2 + (1 + a)**2, rel=1e-6)
    # teacher attended as well: (1 + A)(t - s) = (0, -(1 + A), 0, 0)
    assert agka(attend_teacher=True)(student, teacher).item() == \
        pytest.approx((1 + a)**2, rel=1e-6)
    assert agka(normalizer='elements', loss_weight=3.0)(
        student, teacher).item() == pytest.approx(
            3.0 * (a**2 + (1 + a)**2) / 4, rel=1e-6)
    # a negative query is cut by the ReLU: A = sigmoid(0) = 1/2
    assert agka()(student, -teacher).item() == pytest.approx(
        (-1 - 1.5)**2 + 1.5**2, rel=1e-6)


def agka_reference(loss, feats_S, feats_T):
    total = 0.0
    for level, (s, t) in enumerate(zip(feats_S, feats_T)):
        q_conv, k_conv = loss.queries[level][0], loss.keys[level][0]
        q = F.relu(torch.einsum('oc,nchw->nohw', q_conv.weight[:, :, 0, 0], t)
                   + q_conv.bias.view(1, -1, 1, 1))
        k = F.relu(torch.einsum('oc,nchw->nohw', k_conv.weight[:, :, 0, 0], s)
                   + k_conv.bias.view(1, -1, 1, 1))
        attention = torch.sigmoid((q * k).sum(1, keepdim=True))
        error = t - (s + attention * s)
        total = total + (error**2).sum() / (s.shape[0] * s.shape[2] *
                                            s.shape[3])
    return total


def test_agka_multi_level_matches_reference_and_trains_its_convs():
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='CSAKDAttentionAlignmentLoss',
                             in_channels=[8, 12], reduction=4))
    assert [q[0].out_channels for q in loss.queries] == [2, 3]
    feats_S = [torch.randn(2, 8, 3, 5, requires_grad=True),
               torch.randn(2, 12, 2, 2, requires_grad=True)]
    feats_T = [torch.randn(2, 8, 3, 5, requires_grad=True),
               torch.randn(2, 12, 2, 2, requires_grad=True)]
    value = loss(feats_S, feats_T)
    torch.testing.assert_close(value, agka_reference(
        loss, feats_S, [t.detach() for t in feats_T]))
    value.backward()
    assert all(f.grad.abs().sum() > 0 for f in feats_S)
    assert all(t.grad is None for t in feats_T)  # the teacher is a target
    for name, param in loss.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), \
            name


def test_agka_is_finite_on_extreme_and_zero_features():
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='CSAKDAttentionAlignmentLoss',
                             in_channels=8))
    for scale in (1e4, 0.0):
        feat_S = (torch.randn(2, 8, 3, 3) * scale).requires_grad_()
        value = loss(feat_S, torch.randn(2, 8, 3, 3) * scale)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(feat_S.grad).all()


def test_agka_errors_are_one_line():
    with pytest.raises(MMRSKDError, match='in_channels') as error:
        agka()(torch.zeros(1, 6, 2, 2), torch.zeros(1, 6, 2, 2))
    assert '\n' not in str(error.value)
    with pytest.raises(MMRSKDError, match='reduction'):
        MODELS.build(dict(type='CSAKDAttentionAlignmentLoss', in_channels=2))
    with pytest.raises(MMRSKDError, match='normalizer'):
        agka(normalizer='channels')


# ------------------------------------------ cross forward teacher alignment
def test_align_moments_gives_teacher_channel_statistics():
    feat = torch.tensor([1., 3., 5., 7.]).view(2, 1, 1, 2)  # mean 4, std 5**.5
    ref = torch.tensor([0., 10., 10., 20.]).view(2, 1, 1, 2)  # 10, 50**.5
    aligned = align_moments(feat, ref, 'where', eps=0.0)
    expected = (torch.tensor([1., 3., 5., 7.]) - 4) / 5**0.5 * 50**0.5 + 10
    torch.testing.assert_close(aligned.flatten(), expected)
    with pytest.raises(MMRSKDError, match='align_to'):
        align_moments([feat], [ref[..., :1]], 'cross_forwards.x.align_to')


# -------------------------------------------------------------- training
def build_from_config(path, cross_forwards=None, **model_overrides):
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.model.teacher_ckpt = None
    for role, overrides in model_overrides.items():
        cfg.model[role] = dict(cfg_path=cfg.model[role], **overrides)
    if cross_forwards:
        cfg.merge_from_dict(dict(model=dict(cross_forwards=cross_forwards)))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    return cfg, model


@pytest.mark.parametrize('config,overrides', [
    ('configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py', {}),
    # the full-size RTMDet pair (distance heads), 5 classes for demo_batch
    ('configs/csakd/csakd_rtmdet-s_rtmdet-m_1xb16-100e_dior.py',
     dict(student=dict(bbox_head=dict(num_classes=5)),
          teacher=dict(bbox_head=dict(num_classes=5)))),
])
def test_cpu_config_trains_two_iterations(config, overrides):
    cfg, model = build_from_config(config, **overrides)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    trained = {
        'adapter': model.connectors['adapt'].levels[2].conv.weight,
        'agka_query': model.distill_losses['loss_agka'].queries[1][0].weight,
    }
    before = {k: v.detach().clone() for k, v in trained.items()}
    teacher_before = {k: v.clone() for k, v in
                      model.teacher.state_dict().items()}
    for step in range(2):
        inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                     rotated=False, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper)
        for term in ('loss_cross', 'loss_agka'):
            assert term in log and torch.isfinite(log[term]), term
            assert log[term] > 0, term
    for name, value in trained.items():
        assert not torch.equal(value, before[name]), name
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


def test_cross_supervision_reaches_the_student_only_through_the_teacher():
    _, model = build_from_config(
        'configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py')
    model.train()
    inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                 rotated=False)
    # images without objects: the KD terms do not use the ground truth
    for sample in samples:
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.zeros(0, 4)),
            labels=torch.zeros(0, dtype=torch.long))
    losses = model.loss(inputs, samples)
    for term in ('loss_cross', 'loss_agka'):
        assert torch.isfinite(losses[term]) and losses[term] > 0, term
    losses['loss_cross'].backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    neck_grads = [p.grad for p in model.student.neck.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in neck_grads)
    # the student's own head is not on the cross path
    assert all(p.grad is None for p in model.student.bbox_head.parameters())
    assert model.connectors['adapt'].levels[0].conv.weight.grad.abs().sum() \
        > 0
    # the AGKA convs are not on it either
    assert all(p.grad is None
               for p in model.distill_losses['loss_agka'].parameters())


def test_cross_forward_can_align_to_the_teacher_moments():
    _, model = build_from_config(
        'configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py',
        cross_forwards=dict(cross_head=dict(align_to='t_neck')))
    model.train()
    inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                 rotated=False)
    head_inputs = []
    handle = model.teacher.bbox_head.register_forward_hook(
        lambda module, args, output: head_inputs.append(args[0]))
    try:
        model.loss(inputs, samples)
    finally:
        handle.remove()
    # the teacher's own head call stops the teacher (last tap) before this
    # hook runs, so the one recorded call is the cross forward
    cross_inputs, = head_inputs
    with torch.no_grad():
        teacher_neck = model.teacher.extract_feat(inputs)
    for cross, reference in zip(cross_inputs, teacher_neck):
        assert cross.requires_grad and not reference.requires_grad
        var, mean = torch.var_mean(cross, dim=(0, 2, 3), correction=0)
        ref_var, ref_mean = torch.var_mean(reference, dim=(0, 2, 3),
                                           correction=0)
        torch.testing.assert_close(mean, ref_mean, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(var, ref_var, rtol=1e-3, atol=1e-4)
