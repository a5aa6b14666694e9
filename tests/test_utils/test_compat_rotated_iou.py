"""The compat layer's mmrotate ``RBboxOverlaps2D``, which gives mmcv's
rotated IoU kernel only the pairs whose axis-aligned hulls meet, against
that kernel on every pair and hand-computed overlaps."""
import math

import mmrskd  # noqa: F401  (compat layer before mmrotate is imported)
import pytest
import torch
from mmcv.ops import box_iou_rotated
from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.registry import TASK_UTILS
from mmrskd.utils import compat


def anchors_and_gts(seed):
    """Axis-aligned anchors over a 256-px image and rotated GT boxes, as a
    Rotated RetinaNet assigner sees them (most pairs disjoint)."""
    gen = torch.Generator().manual_seed(seed)
    anchors = torch.cat([
        torch.rand(3000, 2, generator=gen) * 256,
        torch.rand(3000, 2, generator=gen) * 60 + 2,
        torch.zeros(3000, 1)], 1)
    gts = torch.cat([
        torch.rand(15, 2, generator=gen) * 256,
        torch.rand(15, 2, generator=gen) * 40 + 2,
        (torch.rand(15, 1, generator=gen) - 0.5) * math.pi], 1)
    return anchors, gts


def test_the_patch_is_what_the_registry_builds():
    calculator = TASK_UTILS.build(dict(type='mmrotate.RBboxOverlaps2D'))
    assert type(calculator).__call__ is \
        compat._rbbox_overlaps_of_meeting_pairs


@pytest.mark.parametrize('mode', ['iou', 'iof'])
@pytest.mark.parametrize('seed', [0, 1])
def test_equals_the_kernel_on_every_pair(mode, seed):
    anchors, gts = anchors_and_gts(seed)
    expected = box_iou_rotated(anchors, gts, mode)
    ours = RBboxOverlaps2D()(RotatedBoxes(anchors), gts, mode)
    assert 0 < (expected > 0).sum() < expected.numel() // 4
    assert ours.shape == (3000, 15) and ours.dtype == expected.dtype
    assert torch.equal(ours, expected)


@pytest.mark.parametrize('boxes2, mode, expected', [
    ([[1, 0, 2, 2, 0]], 'iou', 2 / 6),  # half overlap
    ([[1, 0, 2, 2, 0]], 'iof', 2 / 4),
    ([[0, 0, 1, 1, 0.7]], 'iof', 1 / 4),  # contained: 1 / area of box 1
    ([[2.0 + 1e-3, 0, 2, 2, 0]], 'iou', 0.0),  # apart by 1e-3: skipped
    ([[0, 0, 2, 2, math.pi / 4]], 'iou',  # 45° square
     (8 * (math.sqrt(2) - 1)) / (8 - 8 * (math.sqrt(2) - 1))),
])
def test_hand_computed(boxes2, mode, expected):
    box1 = torch.tensor([[0., 0., 2., 2., 0.]])
    value = RBboxOverlaps2D()(box1, torch.tensor(boxes2, dtype=torch.float32),
                              mode)
    assert value.item() == pytest.approx(expected, abs=1e-5)


def test_scores_column_empty_inputs_aligned_and_degenerate_boxes():
    anchors, gts = anchors_and_gts(2)
    with_scores = torch.cat([gts, torch.rand(15, 1)], 1)
    calculator = RBboxOverlaps2D()
    assert torch.equal(calculator(anchors, with_scores),
                       calculator(anchors, gts))
    assert calculator(anchors, gts[:0]).shape == (3000, 0)
    assert calculator(anchors[:0], gts).shape == (0, 15)
    assert torch.equal(calculator(gts, gts + 0.5, is_aligned=True),
                       box_iou_rotated(gts, gts + 0.5, aligned=True))
    degenerate = gts.clone()
    degenerate[:5, 2:4] = 0  # mmrotate clamps sides to 1e-3 for the kernel
    clamped = degenerate.clone()
    clamped[:, 2:4] = clamped[:, 2:4].clamp(min=1e-3)
    assert torch.equal(calculator(anchors, degenerate),
                       box_iou_rotated(anchors, clamped))
