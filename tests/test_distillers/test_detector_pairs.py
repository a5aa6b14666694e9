"""One config-only distiller works across the stock detector families:
horizontal (mmdet RetinaNet, FCOS, GFL) and rotated (mmrotate Rotated
RetinaNet, Rotated FCOS with the CPU RotatedIoULoss, Oriented R-CNN), with
teacher and student of different widths and depths."""
import copy

import pytest
import torch

from mmrskd.registry import MODELS
from mmrskd.testing import (demo_batch, tiny_fcos_cfg, tiny_gfl_cfg,
                            tiny_retinanet_cfg, tiny_rotated_retinanet_cfg)
from mmrskd.utils.config import load_config

MMROTATE = 'mmrotate::{}'


def narrow(cfg, depth, width, fpn=16):
    """A narrow ResNet-FPN version of a stock mmrotate config's model."""
    cfg = copy.deepcopy(cfg)
    expansion = 1 if depth in (18, 34) else 4
    cfg.backbone.update(depth=depth, base_channels=width, init_cfg=None)
    cfg.neck.update(in_channels=[width * expansion * 2**i for i in range(4)],
                    out_channels=fpn)
    return cfg


def rotated_fcos(depth, width):
    cfg = load_config(MMROTATE.format(
        'rotated_fcos/rotated-fcos-le90_r50_fpn_1x_dota.py')).model
    cfg = narrow(cfg, depth, width)
    cfg.bbox_head.update(
        in_channels=16, feat_channels=16, stacked_convs=1, num_classes=3,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        loss_bbox=dict(type='mmrskd.RotatedIoULoss', loss_weight=1.0))
    return cfg


def oriented_rcnn(depth, width):
    cfg = load_config(MMROTATE.format(
        'oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py')).model
    cfg = narrow(cfg, depth, width)
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    cfg.roi_head.bbox_head.update(in_channels=16, fc_out_channels=32,
                                  num_classes=3)
    return cfg


PAIRS = {
    'retinanet': (tiny_retinanet_cfg(depth=18, base_channels=8),
                  tiny_retinanet_cfg(depth=34, base_channels=16), False),
    'fcos': (tiny_fcos_cfg(depth=18, base_channels=8),
             tiny_fcos_cfg(depth=50, base_channels=8), False),
    'gfl': (tiny_gfl_cfg(depth=18, base_channels=8),
            tiny_gfl_cfg(depth=34, base_channels=16), False),
    'rotated_retinanet': (tiny_rotated_retinanet_cfg(depth=18,
                                                     base_channels=8),
                          tiny_rotated_retinanet_cfg(depth=50,
                                                     base_channels=8), True),
    'rotated_fcos': (rotated_fcos(18, 8), rotated_fcos(34, 16), True),
    'oriented_rcnn': (oriented_rcnn(18, 8), oriented_rcnn(34, 16), True),
}


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_fpn_distillation_trains_one_step(name):
    student, teacher, rotated = PAIRS[name]
    torch.manual_seed(0)
    for cfg in (student, teacher):
        cfg.setdefault('_scope_', 'mmrotate' if rotated else 'mmrskd')
    model = MODELS.build(dict(
        type='SingleTeacherDistiller',
        student=copy.deepcopy(student), teacher=copy.deepcopy(teacher),
        taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
        distill_losses=dict(loss_fitnet=dict(type='FitNetLoss',
                                             normalize='level')),
        loss_mappings=dict(loss_fitnet=dict(preds_S='s_fpn',
                                            preds_T='t_fpn'))))
    model.init_weights()
    model.train()
    inputs, samples = demo_batch(model.student, size=64, rotated=rotated)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    losses = model.loss(inputs, samples)
    total = sum(v if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and losses['loss_fitnet'] > 0
    before = model.student.neck.fpn_convs[0].conv.weight.clone()
    total.backward()
    optimizer.step()
    assert not torch.equal(before, model.student.neck.fpn_convs[0].conv.weight)
    assert all(p.grad is None for p in model.teacher.parameters())
