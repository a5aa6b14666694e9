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
