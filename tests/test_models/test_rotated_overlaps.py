"""FastRBboxOverlaps2D against mmrotate's RBboxOverlaps2D (mmcv's kernel on
every pair) and hand-computed overlaps."""
import math

import mmrskd  # noqa: F401  (compat layer before mmrotate is imported)
import pytest
import torch
from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.models.task_modules import FastRBboxOverlaps2D
from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


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


@pytest.mark.parametrize('mode', ['iou', 'iof'])
@pytest.mark.parametrize('seed', [0, 1])
def test_equals_mmrotate_on_every_pair(mode, seed):
    anchors, gts = anchors_and_gts(seed)
    expected = RBboxOverlaps2D()(anchors, gts, mode)
    ours = TASK_UTILS.build(dict(type='FastRBboxOverlaps2D'))(
        RotatedBoxes(anchors), gts, mode)
    assert 0 < (expected > 0).sum() < expected.numel() // 4
    assert ours.shape == (3000, 15) and ours.dtype == expected.dtype
    assert torch.equal(ours, expected)


@pytest.mark.parametrize('boxes2, mode, expected', [
    ([[1, 0, 2, 2, 0]], 'iou', 2 / 6),  # half overlap
    ([[1, 0, 2, 2, 0]], 'iof', 2 / 4),
    ([[0, 0, 1, 1, 0.7]], 'iof', 1 / 4),  # contained: 1 / area of box 1
    ([[2.0 + 1e-3, 0, 2, 2, 0]], 'iou', 0.0),  # apart by 1e-3: pruned
    ([[0, 0, 2, 2, math.pi / 4]], 'iou',  # 45° square
     (8 * (math.sqrt(2) - 1)) / (8 - 8 * (math.sqrt(2) - 1))),
])
def test_hand_computed(boxes2, mode, expected):
    box1 = torch.tensor([[0., 0., 2., 2., 0.]])
    value = FastRBboxOverlaps2D()(box1, torch.tensor(boxes2, dtype=torch.float32),
                                  mode)
    assert value.item() == pytest.approx(expected, abs=1e-5)


def test_scores_column_empty_inputs_aligned_and_degenerate_boxes():
    anchors, gts = anchors_and_gts(2)
    with_scores = torch.cat([gts, torch.rand(15, 1)], 1)
    calculator = FastRBboxOverlaps2D()
    assert torch.equal(calculator(anchors, with_scores),
                       calculator(anchors, gts))
    assert calculator(anchors, gts[:0]).shape == (3000, 0)
    assert calculator(anchors[:0], gts).shape == (0, 15)
    assert torch.equal(calculator(gts, gts + 0.5, is_aligned=True),
                       RBboxOverlaps2D()(gts, gts + 0.5, is_aligned=True))
    degenerate = gts.clone()
    degenerate[:5, 2:4] = 0  # clamped to 1e-3 as mmrotate does
    assert torch.equal(calculator(anchors, degenerate),
                       RBboxOverlaps2D()(anchors, degenerate))


def test_unknown_mode_is_a_one_line_error():
    with pytest.raises(MMRSKDError, match="mode must be 'iou' or 'iof'"):
        FastRBboxOverlaps2D()(torch.zeros(1, 5), torch.zeros(1, 5), 'giou')
