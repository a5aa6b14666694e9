"""GradientProbe: per-term gradient norms at the student's shared layers."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub

from mmrskd.registry import MODELS
from mmrskd.testing import demo_batch, tiny_rotated_retinanet_cfg
from mmrskd.utils import MMRSKDError

STUDENT = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16)
TEACHER = tiny_rotated_retinanet_cfg(base_channels=16, fpn_channels=32)


def distiller(**overrides):
    cfg = dict(
        type='SingleTeacherDistiller',
        student=copy.deepcopy(STUDENT), teacher=copy.deepcopy(TEACHER),
        taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
        connectors=dict(adapt=dict(
            type='MultiLevelConnector', num_levels=5,
            connector=dict(type='ConvBNConnector', in_channels=16,
                           out_channels=32))),
        distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=3.0)),
        loss_mappings=dict(loss_pkd=dict(
            preds_S=dict(source='s_fpn', connector='adapt'),
            preds_T='t_fpn')))
    cfg.update(overrides)
    return MODELS.build(cfg)


def grad_norm(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    return torch.sqrt(sum((g**2).sum() for g in grads if g is not None))


def test_probe_logs_each_terms_gradient_norm_at_the_shared_layers():
    torch.manual_seed(0)
    model = distiller(grad_probe=dict(modules=['student.neck'], interval=5))
    model.train()
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 10)
    inputs, samples = demo_batch(model.student, seed=1)
    losses = model.loss(inputs, samples)

    params = list(model.student.neck.parameters())
    det = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
              for k, v in losses.items() if k != 'loss_pkd')
    expected_det = grad_norm(det, params)
    expected_kd = grad_norm(losses['loss_pkd'], params)
    logged = {k: hub.get_scalar(f'train/{k}').current()
              for k in ('grad/det', 'grad/loss_pkd', 'grad_ratio/loss_pkd')}
    assert logged['grad/det'] == pytest.approx(float(expected_det), rel=1e-5)
    assert logged['grad/loss_pkd'] == pytest.approx(float(expected_kd),
                                                    rel=1e-5)
    assert logged['grad_ratio/loss_pkd'] == pytest.approx(
        float(expected_kd / expected_det), rel=1e-5)
    assert 0 < logged['grad/loss_pkd'] and 0 < logged['grad/det']

    # off-interval iterations cost nothing and log nothing new
    hub.update_info('iter', 11)
    assert model.grad_probe({'loss_x': det}, {}) == {}


def test_probe_of_a_layer_a_term_never_reaches_is_zero():
    torch.manual_seed(0)
    # the connector only sees the KD term: the detection gradient there is 0
    model = distiller(grad_probe=dict(modules=['connectors.adapt'],
                                      interval=1))
    model.train()
    MessageHub.get_current_instance().update_info('iter', 0)
    inputs, samples = demo_batch(model.student, seed=1)
    losses = model.loss(inputs, samples)
    logged = model.grad_probe(
        {k: v for k, v in losses.items() if k != 'loss_pkd'},
        {'loss_pkd': losses['loss_pkd']})
    assert logged['grad/det'] == 0.0
    assert logged['grad/loss_pkd'] > 0


@pytest.mark.parametrize('probe, message', [
    (dict(modules=['student.nek']), 'no module "student.nek"'),
    (dict(modules=['student.neck'], interval=0), 'interval=0'),
])
def test_bad_probe_configs_fail_at_build(probe, message):
    with pytest.raises(MMRSKDError, match=message):
        distiller(grad_probe=probe)


def test_balance_scales_each_term_to_its_target_share_of_detection():
    torch.manual_seed(0)
    model = distiller(grad_balance=dict(target_ratio=0.25, interval=1,
                                        momentum=0.5, max_factor=1e6))
    model.train()
    hub = MessageHub.get_current_instance()
    inputs, samples = demo_batch(model.student, seed=1)
    params = list(model.student.neck.parameters())

    def unbalanced_ratio():
        # the same step without the balance: PKD's gradient / detection's
        balance, model.grad_balance = model.grad_balance, None
        losses = model.loss(inputs, samples)
        model.grad_balance = balance
        det = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
                  for k, v in losses.items() if k != 'loss_pkd')
        return float(grad_norm(losses['loss_pkd'], params) /
                     grad_norm(det, params)), losses['loss_pkd']

    hub.update_info('iter', 0)
    r0, raw0 = unbalanced_ratio()
    balanced = model.loss(inputs, samples)['loss_pkd']
    # first measurement: E = r0, f = 0.25 / r0
    assert float(balanced) == pytest.approx(float(raw0) * 0.25 / r0,
                                            rel=1e-4)
    # second (same batch, same ratio up to BN statistics): E = 0.5 E + 0.5 r
    hub.update_info('iter', 1)
    r1, _ = unbalanced_ratio()
    model.loss(inputs, samples)
    ema = 0.5 * r0 + 0.5 * r1
    assert model.grad_balance.ema_ratio.item() == pytest.approx(ema,
                                                                rel=1e-4)
    assert hub.get_scalar('train/grad_balance/loss_pkd').current() == \
        pytest.approx(0.25 / ema, rel=1e-4)
    # saved with the model for --resume
    assert 'grad_balance.ema_ratio' in model.state_dict()


def test_balance_leaves_unreached_terms_and_caps_the_factor():
    from mmrskd.models.distillers.gradient_probe import (GradientBalance,
                                                         GradientProbe)
    lin = torch.nn.Linear(2, 1)
    probe = GradientProbe(lin, [''], interval=1)
    balance = GradientBalance(probe, ['loss_a', 'loss_b'],
                              target_ratio=dict(loss_a=5.0), max_factor=2.0)
    MessageHub.get_current_instance().update_info('iter', 0)
    x = torch.ones(1, 2)
    det = {'loss_det': lin(x).sum()}
    kd = {'loss_a': 0.1 * lin(x).sum(), 'loss_b': torch.tensor(3.0)}
    out = balance(det, kd)
    # ratio 0.1: 5 / 0.1 = 50, capped at 2; loss_b is not balanced
    assert float(out['loss_a']) == pytest.approx(2.0 * float(kd['loss_a']))
    assert float(out['loss_b']) == 3.0


@pytest.mark.parametrize('balance, message', [
    (dict(target_ratio=dict(loss_x=1.0)), r"\['loss_x'\] name no"),
    (dict(target_ratio=0.0), 'must be > 0'),
    (dict(target_ratio=0.5, momentum=1.0), 'momentum=1.0'),
])
def test_bad_balance_configs_fail_at_build(balance, message):
    with pytest.raises(MMRSKDError, match=message):
        distiller(grad_balance=balance)


@MODELS.register_module(force=True)
class FixedScaleLoss(torch.nn.Module):
    """A loss that holds only at multiplier 1 (like DKED's reweight)."""
    rescalable = False

    def forward(self, preds_S, preds_T):
        return sum((s.mean() - t.mean())**2 for s, t in zip(preds_S, preds_T))


def test_balance_leaves_losses_that_hold_only_at_weight_one():
    extra = dict(
        distill_losses=dict(
            loss_pkd=dict(type='PKDLoss'),
            loss_fixed=dict(type='FixedScaleLoss')),
        loss_mappings=dict(
            loss_pkd=dict(preds_S=dict(source='s_fpn', connector='adapt'),
                          preds_T='t_fpn'),
            loss_fixed=dict(preds_S=dict(source='s_fpn', connector='adapt'),
                            preds_T='t_fpn')))
    model = distiller(grad_balance=dict(target_ratio=0.5), **extra)
    assert model.grad_balance.names == ['loss_pkd']
    with pytest.raises(MMRSKDError, match=r"\['loss_fixed'\] hold only"):
        distiller(grad_balance=dict(target_ratio=dict(loss_fixed=0.5)),
                  **extra)


def test_dked_reweight_prediction_loss_is_not_rescalable():
    from mmrskd.models.losses import DKEDPredictionLoss
    assert not DKEDPredictionLoss(combine='reweight').rescalable
    assert DKEDPredictionLoss(combine='additive').rescalable


def test_balance_calibrates_on_unscheduled_terms_then_freezes():
    from mmrskd.models.distillers.gradient_probe import (GradientBalance,
                                                         GradientProbe)
    lin = torch.nn.Linear(2, 1)
    balance = GradientBalance(GradientProbe(lin, [''], interval=1),
                              ['loss_a'], target_ratio=1.0, momentum=0.0,
                              max_factor=1e6, calibration_iters=2)
    hub = MessageHub.get_current_instance()
    x = torch.ones(1, 2)

    def step(it, kd_scale, schedule_weight):
        hub.update_info('iter', it)
        det = {'loss_det': lin(x).sum()}
        # the scheduled term: schedule weight x the raw term (0.1 x det)
        kd = {'loss_a': schedule_weight * kd_scale * lin(x).sum()}
        return float(balance(det, kd, {'loss_a': schedule_weight})['loss_a']
                     / kd['loss_a'])

    # raw ratio 0.1 whatever the schedule weight (4): factor 1 / 0.1
    assert step(0, 0.1, 4.0) == pytest.approx(10.0)
    assert step(1, 0.2, 1.0) == pytest.approx(5.0)
    # calibration over: the factor stays, however the term changes
    assert step(2, 0.01, 1.0) == pytest.approx(5.0)
    assert balance.ema_ratio.item() == pytest.approx(0.2)
