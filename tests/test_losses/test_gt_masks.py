import math

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes, rbox2qbox
from shapely.geometry import Point, Polygon

from mmrskd.models.utils import (boxes_to_cell_masks, featmap_stride,
                                 rasterize_gt_boxes)
from mmrskd.utils import MMRSKDError


def grid(rows):
    """Hand-drawn mask: '#' marks a cell."""
    return torch.tensor([[ch == '#' for ch in row] for row in rows])


def gt(boxes):
    return InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


def test_hbox_hits_the_cells_whose_centres_it_contains():
    # stride 8: cell centres at 4, 12, 20, 28
    masks = boxes_to_cell_masks(
        torch.tensor([[5., 3., 21., 13.]]), (4, 4), stride=8)
    assert torch.equal(masks[0], grid(['.##.',
                                       '.##.',
                                       '....',
                                       '....']))


def test_hbox_border_through_a_cell_centre_is_inside():
    masks = boxes_to_cell_masks(
        HorizontalBoxes(torch.tensor([[4., 4., 12., 4.]])), (3, 3), stride=8)
    assert torch.equal(masks[0], grid(['##.',
                                       '...',
                                       '...']))


@pytest.mark.parametrize('angle,expected', [
    (math.pi / 4, ['.....',
                   '.#...',
                   '..#..',
                   '...#.',
                   '.....']),
    (-math.pi / 4, ['.....',
                    '...#.',
                    '..#..',
                    '.#...',
                    '.....']),
    (0.0, ['.....',
           '.....',
           '#####',
           '.....',
           '.....']),
])
def test_rotated_box_at_known_angle(angle, expected):
    # a 5 x 1 bar centred on cell (2, 2); angle turns its long side from +x
    # towards +y (image y points down), so +45 deg runs top-left to
    # bottom-right. Stride 8 with coordinates scaled by 8.
    bar = torch.tensor([[2.5 * 8, 2.5 * 8, 5 * 8, 1 * 8, angle]])
    masks = boxes_to_cell_masks(RotatedBoxes(bar), (5, 5), stride=8)
    assert torch.equal(masks[0], grid(expected))


def test_rotated_square_is_a_diamond():
    # a 3 x 3 square turned by 45 deg: |dx| + |dy| <= 1.5 * sqrt(2) in cells
    square = torch.tensor([[2.5, 2.5, 3., 3., math.pi / 4]])
    expected = grid(['..#..',
                     '.###.',
                     '#####',
                     '.###.',
                     '..#..'])
    assert torch.equal(boxes_to_cell_masks(square, (5, 5), 1)[0], expected)
    # the same square as hand-written corners (a qbox)
    r = 1.5 * math.sqrt(2)
    corners = torch.tensor([[2.5, 2.5 - r, 2.5 + r, 2.5, 2.5, 2.5 + r,
                             2.5 - r, 2.5]])
    assert torch.equal(
        boxes_to_cell_masks(QuadriBoxes(corners), (5, 5), 1)[0], expected)


def test_rotated_boxes_agree_with_shapely_polygons():
    rng = np.random.default_rng(8)
    rboxes = torch.tensor(np.column_stack([
        rng.uniform(0, 40, 12), rng.uniform(0, 30, 12),
        rng.uniform(2, 25, 12), rng.uniform(2, 25, 12),
        rng.uniform(-math.pi, math.pi, 12)
    ]), dtype=torch.float32)
    stride_w, stride_h = 4.0, 3.0
    feat_h, feat_w = 10, 10
    masks = boxes_to_cell_masks(rboxes, (feat_h, feat_w),
                                (stride_w, stride_h), min_one_cell=False)
    qmasks = boxes_to_cell_masks(rbox2qbox(rboxes), (feat_h, feat_w),
                                 (stride_w, stride_h), min_one_cell=False)
    checked = 0
    for k, corners in enumerate(rbox2qbox(rboxes).double().numpy()):
        polygon = Polygon(corners.reshape(4, 2))
        for i in range(feat_h):
            for j in range(feat_w):
                point = Point((j + 0.5) * stride_w, (i + 0.5) * stride_h)
                if polygon.exterior.distance(point) < 0.02:
                    continue  # within the 0.01 px boundary margin
                inside = polygon.contains(point)
                assert masks[k, i, j].item() == inside, (k, i, j)
                assert qmasks[k, i, j].item() == inside, (k, i, j)
                checked += inside
    assert checked > 50


def test_small_and_degenerate_boxes_mark_their_centre_cell():
    boxes = torch.tensor([[9., 9., 10., 10.],   # between cell centres
                          [20., 5., 20., 5.],   # a point
                          [-9., 5., -5., 6.]])  # centre off the grid
    masks = boxes_to_cell_masks(boxes, (4, 4), stride=8)
    assert masks[0].nonzero().tolist() == [[1, 1]]
    assert masks[1].nonzero().tolist() == [[0, 2]]
    assert not masks[2].any()
    assert not boxes_to_cell_masks(boxes, (4, 4), 8, min_one_cell=False).any()
    zero_rbox = RotatedBoxes(torch.tensor([[12., 20., 0., 0., 0.7]]))
    assert boxes_to_cell_masks(zero_rbox, (4, 4),
                               8)[0].nonzero().tolist() == [[2, 1]]


def test_batch_masks_and_fgd_area_normalisation():
    batch = [
        gt(torch.tensor([[0., 0., 16., 24.],     # 2 x 3 cells
                         [10., 10., 14., 14.]])),  # 1 cell, inside the first
        gt(torch.zeros(0, 4)),
    ]
    binary = rasterize_gt_boxes(batch, (4, 4), stride=8)
    assert binary.shape == (2, 1, 4, 4) and binary.dtype == torch.float32
    assert torch.equal(binary[0, 0].bool(), grid(['##..',
                                                  '##..',
                                                  '##..',
                                                  '....']))
    assert not binary[1].any()
    normalised = rasterize_gt_boxes(batch, (4, 4), 8, area_normalize=True)
    expected = torch.zeros(4, 4)
    expected[:3, :2] = 1 / 6
    expected[1, 1] = 1.0  # overlapping boxes keep the larger value
    torch.testing.assert_close(normalised[0, 0], expected)


def test_empty_gt_gives_zero_masks():
    batch = [gt(torch.zeros(0, 4)),
             gt(RotatedBoxes(torch.zeros(0, 5)))]
    masks = rasterize_gt_boxes(batch, (3, 5), stride=16, area_normalize=True)
    assert masks.shape == (2, 1, 3, 5) and not masks.any()


def test_featmap_stride_from_batch_input_shape():
    metas = [dict(batch_input_shape=(64, 96), img_shape=(60, 90))]
    assert featmap_stride(metas, (8, 12)) == (8.0, 8.0)
    assert featmap_stride(metas, (4, 3)) == (32.0, 16.0)
    with pytest.raises(MMRSKDError, match='batch_input_shape'):
        featmap_stride([dict(img_shape=(60, 90))], (8, 12))


def test_bad_boxes_raise():
    with pytest.raises(MMRSKDError, match=r'\(k, 4\) xyxy'):
        boxes_to_cell_masks(torch.zeros(2, 3), (4, 4), 8)
    with pytest.raises(MMRSKDError, match='has no bboxes'):
        rasterize_gt_boxes([InstanceData(labels=torch.zeros(1))], (4, 4), 8)
