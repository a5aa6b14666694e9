"""The CPU rotated IoU loss against mmcv's rotated IoU kernel and shapely."""
import math

import numpy as np
import pytest
import torch
from mmcv.ops import box_iou_rotated
from shapely.geometry import Polygon

from mmrskd.models.losses.rotated_iou_loss import (RotatedIoULoss,
                                                   rbox_corners, rotated_iou)


def random_pairs(n, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.cat([torch.rand(n, 2, generator=gen) * 20,
                   torch.rand(n, 2, generator=gen) * 15 + 1,
                   (torch.rand(n, 1, generator=gen) - 0.5) * math.pi], 1)
    b = a + torch.cat([torch.randn(n, 2, generator=gen) * 4,
                       torch.randn(n, 2, generator=gen),
                       torch.randn(n, 1, generator=gen)], 1)
    b[:, 2:4] = b[:, 2:4].abs() + 0.5
    return a.double(), b.double()


def shapely_iou(a, b):
    pa = Polygon(rbox_corners(a[None]).squeeze(0).numpy())
    pb = Polygon(rbox_corners(b[None]).squeeze(0).numpy())
    return pa.intersection(pb).area / pa.union(pb).area


def test_matches_mmcv_kernel_and_shapely_on_random_boxes():
    a, b = random_pairs(300, seed=0)
    ours = rotated_iou(a, b)
    mmcv_iou = box_iou_rotated(a.float(), b.float(), aligned=True)
    reference = torch.tensor([shapely_iou(x, y) for x, y in zip(a, b)],
                             dtype=torch.float64)
    assert (reference > 0).sum() > 100 and (reference == 0).sum() > 10
    assert torch.allclose(ours, reference, atol=1e-4)
    assert torch.allclose(ours.float(), mmcv_iou, atol=1e-4)


@pytest.mark.parametrize('a, b, expected', [
    ([5, 5, 4, 2, 0.3], [5, 5, 4, 2, 0.3], 1.0),  # identical
    ([0, 0, 2, 2, 0], [1, 0, 2, 2, 0], 2 / 6),  # half overlap
    ([0, 0, 2, 2, 0], [10, 0, 2, 2, 0.5], 0.0),  # disjoint
    ([0, 0, 4, 4, 0], [0, 0, 2, 2, 0.7], 4 / 16),  # contained
    ([0, 0, 2, 2, 0], [0, 0, 2, 2, math.pi / 4],  # square vs 45° square
     (8 * (math.sqrt(2) - 1)) / (8 - 8 * (math.sqrt(2) - 1))),
])
def test_hand_computed_ious(a, b, expected):
    iou = rotated_iou(torch.tensor([a], dtype=torch.float64),
                      torch.tensor([b], dtype=torch.float64))
    assert iou.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize('mode', ['linear', 'square', 'log'])
def test_loss_modes_gradients_and_degenerate_boxes(mode):
    a, b = random_pairs(64, seed=1)
    a[0, 2] = 0.0  # zero-area prediction
    b[1] = a[1]  # exact match
    a[2, :2] = b[2, :2] + 1000  # far away
    pred = a.float().requires_grad_()
    loss = RotatedIoULoss(mode=mode, reduction='none')(pred, b.float())
    iou = rotated_iou(a, b).float()
    expected = {'linear': 1 - iou, 'square': 1 - iou**2,
                'log': -iou.clamp(min=1e-6).log()}[mode]
    assert torch.allclose(loss, expected, atol=1e-4)
    loss.sum().backward()
    assert torch.isfinite(pred.grad).all()
    # a prediction that overlaps its target gets a gradient towards it
    assert pred.grad[3:].abs().sum() > 0


def test_weights_avg_factor_and_empty_input():
    loss = RotatedIoULoss(mode='linear', loss_weight=2.0)
    a, b = random_pairs(4, seed=2)
    weight = torch.tensor([1.0, 0.0, 1.0, 0.0])
    got = loss(a.float(), b.float(), weight=weight, avg_factor=2.0)
    iou = rotated_iou(a, b).float()
    assert got.item() == pytest.approx(
        2.0 * ((1 - iou) * weight).sum().item() / 2.0, abs=1e-5)
    empty = torch.zeros(0, 5, requires_grad=True)
    value = loss(empty, torch.zeros(0, 5), weight=torch.zeros(0, 5))
    assert value.item() == 0.0
    value.backward()


def test_builds_from_rotated_fcos_head_on_cpu():
    from mmrskd.registry import MODELS
    head = MODELS.build(dict(
        type='mmrotate.RotatedFCOSHead', num_classes=2, in_channels=8,
        feat_channels=8, stacked_convs=1, strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        loss_bbox=dict(type='RotatedIoULoss', loss_weight=1.0)))
    assert isinstance(head.loss_bbox, RotatedIoULoss)
    assert np.isfinite(float(head.loss_bbox(
        torch.tensor([[0., 0, 2, 2, 0]]), torch.tensor([[1., 0, 2, 2, 0]]))))
