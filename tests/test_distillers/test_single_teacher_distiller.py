"""The distiller core: teacher handling, taps, mappings, checks, schedules."""
import copy
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub

from mmrskd.registry import MODELS
from mmrskd.testing import demo_batch, tiny_rotated_retinanet_cfg
from mmrskd.utils import MMRSKDError


@MODELS.register_module(force=True)
class RecordingMSELoss(nn.Module):
    """Plain MSE that keeps its inputs, so tests can inspect them."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.seen = None

    def forward(self, preds_S, preds_T):
        self.seen = (preds_S, preds_T)
        if torch.is_tensor(preds_S):
            preds_S, preds_T = [preds_S], [preds_T]
        return self.loss_weight * sum(
            F.mse_loss(s, t) for s, t in zip(preds_S, preds_T))


STUDENT = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16)
TEACHER = tiny_rotated_retinanet_cfg(base_channels=16, fpn_channels=32)


def fpn_distiller(**overrides):
    cfg = dict(
        type='SingleTeacherDistiller',
        student=copy.deepcopy(STUDENT),
        teacher=copy.deepcopy(TEACHER),
        taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
        connectors=dict(adapt=dict(type='MultiLevelConnector', num_levels=5,
                                   connector=dict(type='ConvBNConnector',
                                                  in_channels=16,
                                                  out_channels=32))),
        distill_losses=dict(loss_fpn=dict(type='RecordingMSELoss')),
        loss_mappings=dict(loss_fpn=dict(
            preds_S=dict(source='s_fpn', connector='adapt'),
            preds_T='t_fpn')))
    cfg.update(overrides)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def distiller():
    torch.manual_seed(0)
    return fpn_distiller()


def test_teacher_is_frozen_and_kept_out_of_state(distiller):
    assert all(not p.requires_grad for p in distiller.teacher.parameters())
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    param_ids = {id(p) for p in distiller.parameters()}
    assert not param_ids & {id(p) for p in distiller.teacher.parameters()}
    prefixes = {k.split('.')[0] for k in distiller.state_dict()}
    assert prefixes <= {'student', 'connectors', 'distill_losses',
                        'loss_schedules', 'data_preprocessor'}
    distiller.train()
    assert not distiller.teacher.training
    assert all(not m.training for m in distiller.teacher.modules())


def test_teacher_gets_no_grad_no_graph_and_keeps_bn_stats(distiller):
    distiller.train()
    bn_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()
                 if 'running' in k}
    inputs, samples = demo_batch(distiller.student)
    losses = distiller.loss(inputs, samples)
    assert set(losses) >= {'loss_cls', 'loss_bbox', 'loss_fpn'}
    student_feats, teacher_feats = distiller.distill_losses['loss_fpn'].seen
    assert all(t.grad_fn is None and not t.requires_grad
               for t in teacher_feats)
    assert all(s.requires_grad for s in student_feats)
    losses['loss_fpn'].backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert distiller.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    for k, v in distiller.teacher.state_dict().items():
        if k in bn_before:
            assert torch.equal(v, bn_before[k]), k
    # taps hold nothing once the step is over
    assert not distiller.student_taps.records
    assert not distiller.teacher_taps.records


def test_distill_loss_value_matches_independent_computation(distiller):
    distiller.train()
    inputs, samples = demo_batch(distiller.student, seed=3)
    loss = distiller.loss(inputs, samples)['loss_fpn']
    with torch.no_grad():
        t_feats = distiller.teacher.extract_feat(inputs)
    s_feats = distiller.student.extract_feat(inputs)
    adapted = distiller.connectors['adapt'](s_feats)
    expected = sum(F.mse_loss(s, t) for s, t in zip(adapted, t_feats))
    # BN in the connector is in train mode: same batch, same statistics.
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_teacher_stops_after_its_last_tap():
    model = fpn_distiller(
        taps=dict(s_c5='student.backbone.layer4', t_c5='teacher.backbone'),
        connectors=dict(adapt=dict(type='ConvBNConnector', in_channels=64,
                                   out_channels=128)),
        loss_mappings=dict(loss_fpn=dict(
            preds_S=dict(source='s_c5', connector='adapt'),
            preds_T='t_c5[3]')))
    calls = []
    model.teacher.neck.register_forward_hook(lambda *a: calls.append('neck'))
    model.teacher.bbox_head.register_forward_hook(
        lambda *a: calls.append('head'))
    inputs, samples = demo_batch(model.student)
    model.loss(inputs, samples)
    assert calls == []
    model.teacher_early_exit = False
    model.loss(inputs, samples)
    assert calls == ['neck', 'head']


def test_cross_forward_sends_gradient_through_frozen_teacher_head():
    model = fpn_distiller(
        taps=dict(s_fpn='student.neck', t_head='teacher.bbox_head'),
        cross_forwards=dict(cross_head=dict(
            source=dict(source='s_fpn', connector='adapt'),
            modules=['bbox_head'])),
        distill_losses=dict(loss_cross=dict(type='RecordingMSELoss')),
        loss_mappings=dict(loss_cross=dict(preds_S='cross_head[0]',
                                           preds_T='t_head[0]')))
    inputs, samples = demo_batch(model.student)
    loss = model.loss(inputs, samples)['loss_cross']
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert model.student.bbox_head.retina_cls.weight.grad is None


def test_method_tap_records_label_assignment():
    model = fpn_distiller(
        taps=dict(s_fpn='student.neck', t_fpn='teacher.neck',
                  s_targets=dict(model='student',
                                 method='bbox_head.get_targets')))
    inputs, samples = demo_batch(model.student)
    seen = {}
    original = model.distillation_losses

    def spy(context, *args):
        seen.update(model.student_taps.records)
        return original(context, *args)

    model.distillation_losses = spy
    model.loss(inputs, samples)
    labels_list = seen['s_targets'][0]
    assert len(labels_list) == 5  # one label map per FPN level


def test_copies_share_the_teacher(distiller):
    distiller.distill_losses['loss_fpn'].seen = None  # the test's own spy
    twin = copy.deepcopy(distiller)
    assert twin.teacher is distiller.teacher
    assert twin.student is not distiller.student
    assert torch.equal(twin.student.neck.fpn_convs[0].conv.weight,
                       distiller.student.neck.fpn_convs[0].conv.weight)


def test_student_submodules_are_reachable_for_detector_hooks(distiller):
    assert distiller.bbox_head is distiller.student.bbox_head
    assert distiller.neck is distiller.student.neck
    with pytest.raises(AttributeError):
        distiller.roi_head


def test_predict_is_the_students(distiller):
    distiller.eval()
    inputs, samples = demo_batch(distiller.student, seed=5)
    expected = distiller.student.predict(inputs, copy.deepcopy(samples))
    got = distiller(inputs, copy.deepcopy(samples), mode='predict')
    assert torch.equal(got[0].pred_instances.scores,
                       expected[0].pred_instances.scores)
    distiller.predict_with = 'teacher'
    teacher = distiller.teacher.predict(inputs, copy.deepcopy(samples))
    got = distiller(inputs, copy.deepcopy(samples), mode='predict')
    distiller.predict_with = 'student'
    assert torch.equal(got[0].pred_instances.scores,
                       teacher[0].pred_instances.scores)


def test_student_and_teacher_from_local_config_files(tmp_path):
    for name, model in (('s.py', STUDENT), ('t.py', TEACHER)):
        (tmp_path / name).write_text(
            f"default_scope = 'mmrskd'\nmodel = {dict(model)!r}\n")
    model = fpn_distiller(student=str(tmp_path / 's.py'),
                          teacher=dict(cfg_path=str(tmp_path / 't.py'),
                                       bbox_head=dict(stacked_convs=1)))
    assert len(model.teacher.bbox_head.cls_convs) == 1
    assert type(model.student).__name__ == 'RetinaNet'


def test_teacher_checkpoint_is_loaded(tmp_path):
    teacher = MODELS.build(copy.deepcopy(TEACHER))
    for p in teacher.parameters():
        nn.init.constant_(p, 0.5)
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict(epoch=3)),
               ckpt)
    model = fpn_distiller(teacher_ckpt=str(ckpt))
    assert all(torch.all(p == 0.5) for p in model.teacher.parameters())


@pytest.mark.parametrize('overrides, message', [
    (dict(taps=dict(s_fpn='student.nek', t_fpn='teacher.neck')),
     r'taps.s_fpn: no module "nek" .*nearest: neck'),
    (dict(distill_losses=dict(fpn=dict(type='RecordingMSELoss')),
          loss_mappings=dict(fpn=dict(preds_S='s_fpn', preds_T='t_fpn'))),
     r'distill_losses.fpn: .*contains "loss"'),
    (dict(loss_mappings=dict(loss_fpn=dict(preds_S='s_fpn', preds_T='t_fpn',
                                           feats='t_fpn'))),
     r'loss_mappings.loss_fpn.feats: RecordingMSELoss.forward has no '
     r'argument "feats"'),
    (dict(loss_mappings=dict(loss_fpn=dict(preds_S='s_fpn'))),
     r"needs \['preds_T'\]"),
    (dict(loss_mappings=dict(loss_fpn=dict(preds_S='s_fpm', preds_T='t_fpn'))),
     r'unknown source "s_fpm"'),
    (dict(teacher_ckpt='/nonexistent/teacher.pth'),
     r'teacher_ckpt not found: /nonexistent/teacher.pth'),
    (dict(loss_schedules=dict(loss_fgd=dict(type='WarmupSchedule',
                                            warmup_iters=10))),
     r"loss_schedules: \['loss_fgd'\] name no distill loss"),
    (dict(teacher=tiny_rotated_retinanet_cfg(base_channels=16, num_classes=5)),
     r'teacher predicts 5 classes, student 3'),
    (dict(student='/nonexistent/student.py'),
     r'student: config file not found: /nonexistent/student.py'),
])
def test_bad_configs_fail_at_build(overrides, message):
    with pytest.raises(MMRSKDError, match=message):
        fpn_distiller(**overrides)


@pytest.mark.parametrize('overrides, message', [
    (dict(loss_mappings=dict(loss_fpn=dict(preds_S='s_fpn', preds_T='t_fpn'))),
     r'loss_mappings.loss_fpn: preds_S has shape \[\(2, 16, 16, 16\).* but '
     r'preds_T has \[\(2, 32, 16, 16\).*add a connector|adapt the student'),
    (dict(taps=dict(s_fpn='student.data_preprocessor', t_fpn='teacher.neck')),
     r'taps.s_fpn: student.data_preprocessor did not run'),
])
def test_bad_configs_fail_on_first_batch_before_any_step(overrides, message):
    model = fpn_distiller(**overrides)
    inputs, samples = demo_batch(model.student)
    with pytest.raises(MMRSKDError, match=message):
        model.loss(inputs, samples)
    assert not model.student_taps.records and not model.teacher_taps.records


def test_schedule_scales_the_loss(distiller):
    model = fpn_distiller(loss_schedules=dict(
        loss_fpn=dict(type='RampSchedule', start_iter=0, end_iter=10,
                      start_value=0.0, end_value=2.0)))
    model.load_state_dict(distiller.state_dict())
    model.teacher.load_state_dict(distiller.teacher.state_dict())
    model.eval(), distiller.eval()  # frozen BN: equal losses across calls
    inputs, samples = demo_batch(model.student)
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', 100)
    try:
        hub.update_info('iter', 5)
        scaled = model.loss(inputs, samples)['loss_fpn']
        plain = distiller.loss(inputs, samples)['loss_fpn']
        assert torch.allclose(scaled, plain * 1.0, rtol=1e-5)  # 0 + 2 * 5/10
        hub.update_info('iter', 0)
        assert model.loss(inputs, samples)['loss_fpn'].item() == 0.0
    finally:
        hub.update_info('iter', 0)


@MODELS.register_module(force=True)
class TwoTermMSELoss(nn.Module):
    """Named terms: the MSE of every level and of the first level only."""

    def __init__(self, term_names=('loss_all', 'loss_first')):
        super().__init__()
        self.term_names = tuple(term_names)

    def forward(self, preds_S, preds_T):
        per_level = [F.mse_loss(s, t) for s, t in zip(preds_S, preds_T)]
        return dict(zip(self.term_names, (sum(per_level), per_level[0])))


def two_term_distiller(**loss_options):
    return fpn_distiller(
        distill_losses=dict(loss_two=dict(type='TwoTermMSELoss',
                                          **loss_options)),
        loss_mappings=dict(loss_two=dict(
            preds_S=dict(source='s_fpn', connector='adapt'),
            preds_T='t_fpn')),
        loss_schedules=dict(
            loss_two=dict(type='RampSchedule', start_iter=0, end_iter=10,
                          start_value=0.0, end_value=2.0)))


def test_terms_of_a_loss_are_logged_and_scheduled_by_name():
    torch.manual_seed(0)
    model = two_term_distiller()
    assert model.distill_term_names == ['loss_all', 'loss_first']
    model.eval()  # frozen BN: the same features in every call
    inputs, samples = demo_batch(model.student)
    with torch.no_grad():
        adapted = model.connectors['adapt'](
            model.student.extract_feat(inputs))
        feats_T = model.teacher.extract_feat(inputs)
    per_level = [F.mse_loss(s, t).item() for s, t in zip(adapted, feats_T)]
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', 100)
    try:
        hub.update_info('iter', 2)  # weight 0.4
        losses = model.loss(inputs, samples)
        assert 'loss_two' not in losses
        assert losses['loss_all'].item() == pytest.approx(
            0.4 * sum(per_level), rel=1e-5)
        assert losses['loss_first'].item() == pytest.approx(
            0.4 * per_level[0], rel=1e-5)
        assert model.schedule_weights == dict(loss_all=0.4, loss_first=0.4)
        hub.update_info('iter', 0)  # weight 0: every term is logged as 0
        losses = model.loss(inputs, samples)
        assert losses['loss_all'].item() == losses['loss_first'].item() == 0
    finally:
        hub.update_info('iter', 0)


def test_term_names_must_not_clash():
    with pytest.raises(MMRSKDError, match=r"terms \['loss_fpn'\] are "
                       'logged by more than one loss'):
        fpn_distiller(distill_losses=dict(
            loss_fpn=dict(type='RecordingMSELoss'),
            loss_two=dict(type='TwoTermMSELoss',
                          term_names=('loss_fpn', 'loss_first'))),
            loss_mappings=dict(
                loss_fpn=dict(preds_S=dict(source='s_fpn', connector='adapt'),
                              preds_T='t_fpn'),
                loss_two=dict(preds_S=dict(source='s_fpn', connector='adapt'),
                              preds_T='t_fpn')))
    model = two_term_distiller(term_names=('loss_all', 'loss_cls'))
    inputs, samples = demo_batch(model.student)
    with pytest.raises(MMRSKDError, match=r"\['loss_cls'\] share a name"):
        model.loss(inputs, samples)


def test_student_init_and_later_draws_match_the_student_alone():
    """Runs of one seed are paired: teacher, connectors and losses are built
    from a forked RNG, so the student's weights after init_weights() and
    every later draw (data order, augmentation) equal the student alone's."""
    from mmengine.runner import set_random_seed

    def student_and_next_draws(build):
        set_random_seed(7)
        model = build()
        model.init_weights()
        student = getattr(model, 'student', model)
        draws = (torch.rand(3), np.random.rand(3), random.random())
        return student.state_dict(), draws

    alone, alone_draws = student_and_next_draws(
        lambda: MODELS.build(copy.deepcopy(STUDENT)))
    paired, paired_draws = student_and_next_draws(
        fpn_distiller)
    assert alone.keys() == paired.keys()
    for key, value in alone.items():
        assert torch.equal(value, paired[key]), key
    assert torch.equal(alone_draws[0], paired_draws[0])
    assert np.array_equal(alone_draws[1], paired_draws[1])
    assert alone_draws[2] == paired_draws[2]
