"""The exact IoU of horizontal and rotated boxes against hand-computed
values, exact polygon areas (shapely) and mmcv's rotated IoU kernel, the
values LTD's assigners used on every pair."""
import math

import numpy as np
import pytest
import shapely
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.structures.bbox import RotatedBoxes, rbbox_overlaps

from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.structures import aligned_hbox_rbox_iou
from mmrskd.structures.hbox_rbox_overlaps import CHUNK
from mmrskd.testing import scene_batch, tiny_rotated_retinanet_cfg

SQRT2 = math.sqrt(2)


def kernel(hboxes, rboxes):
    """mmcv's kernel as mmrotate calls it (the sides raised to 1e-3)."""
    return rbbox_overlaps(HorizontalBoxes(hboxes).convert_to('rbox').tensor,
                          rboxes, is_aligned=True).double()


def polygon_iou(hboxes, rboxes):
    """Exact float64 IoU of the polygons (shapely)."""
    polygons = [
        shapely.polygons(boxes.convert_to('qbox').tensor.numpy().reshape(
            -1, 4, 2)) for boxes in (HorizontalBoxes(hboxes.double()),
                                     RotatedBoxes(rboxes.double()))
    ]
    inter = shapely.area(shapely.intersection(*polygons))
    union = shapely.area(polygons[0]) + shapely.area(polygons[1]) - inter
    return torch.from_numpy(inter / union)


@pytest.mark.parametrize('rbox,expected', [
    ([1., 1., 2., 2., 0.], 1.0),  # the same box
    ([1., 1., 2., 2., math.pi / 2], 1.0),  # the same box, turned by 90°
    ([1., 1., 2., 2., math.pi], 1.0),
    ([1., 1., 2., 2., -math.pi / 2], 1.0),
    ([1., 1., SQRT2, SQRT2, math.pi / 4], 0.5),  # the inscribed diamond
    # 45° square of the same size: the square less four corners of area
    # (sqrt2 - 1)^2 each, IoU (8 sqrt2 - 8) / (16 - 8 sqrt2) = 1 / sqrt2
    ([1., 1., 2., 2., math.pi / 4], 1 / SQRT2),
    ([1., 1., 1., .5, 0.3], 0.125),  # inside: the area ratio
    ([1., 1., 8., 8., 0.3], 4 / 64),  # containing
    ([3., 1., 2., 2., 0.], 0.0),  # touching edges
    ([3., 1., 2., 2., math.pi / 2], 0.0),
    ([2. + SQRT2, 1., 2., 2., math.pi / 4], 0.0),  # touching corners
    ([2., 1., 2., 2., 0.], 1 / 3),  # half over
    ([5., 5., 1., 1., 0.7], 0.0),  # apart
    # zero width: raised to 1e-3 as mmrotate does, 1e-3 * 1 / 4
    ([1., 1., 0., 1., 0.3], 2.5e-4),
])
def test_hand_computed_cases(rbox, expected):
    iou = aligned_hbox_rbox_iou(torch.tensor([[0., 0., 2., 2.]]),
                                torch.tensor([rbox]))
    assert iou.dtype == torch.float64
    assert iou.item() == pytest.approx(expected, abs=1e-6)


def test_a_zero_area_prior_is_raised_to_min_sides_like_the_kernel():
    hboxes = torch.tensor([[1., 1., 1., 1.], [0., 0., 0., 4.]])
    rboxes = torch.tensor([[1., 1., 2., 2., 0.3], [0., 2., 2., 4., 0.]])
    torch.testing.assert_close(aligned_hbox_rbox_iou(hboxes, rboxes),
                               kernel(hboxes, rboxes), atol=1e-7, rtol=0)


def random_pairs(num, seed):
    """Horizontal and rotated boxes of up to 60 px around each other, a
    fifth of the angles at 0, +-90, 180 or 45 degrees and a tenth within
    1e-5 of a right angle."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(num, 2, generator=gen) * 100
    sides = torch.rand(num, 2, generator=gen) * 60 + 1
    hboxes = torch.cat([centres - sides / 2, centres + sides / 2], dim=1)
    rboxes = torch.cat([
        centres + (torch.rand(num, 2, generator=gen) - 0.5) * 60,
        torch.rand(num, 2, generator=gen) * 60 + 0.5,
        (torch.rand(num, 1, generator=gen) - 0.5) * 2 * math.pi], dim=1)
    fifth, tenth = num // 5, num // 10
    special = torch.tensor([0., math.pi / 2, -math.pi / 2, math.pi,
                            math.pi / 4])
    rboxes[:fifth, 4] = special[torch.randint(5, (fifth, ), generator=gen)]
    rboxes[fifth:fifth + tenth, 4] = (
        torch.randint(-2, 3, (tenth, ), generator=gen) * math.pi / 2 +
        (torch.rand(tenth, generator=gen) - 0.5) * 1e-5)
    return hboxes, rboxes


def test_matches_exact_polygon_areas():
    hboxes, rboxes = random_pairs(20000, seed=0)
    iou = aligned_hbox_rbox_iou(hboxes, rboxes)
    exact = polygon_iou(hboxes, rboxes)
    assert (exact > 0.1).sum() > 5000  # overlapping pairs are tested
    general = slice(6000, None)  # angles off the axes
    assert (iou - exact)[general].abs().max() < 1e-9
    # within 1e-7 of the axes a box is taken as a rectangle
    assert (iou - exact).abs().max() < 1e-6


def test_matches_the_kernel_on_random_pairs_in_several_chunks():
    hboxes, rboxes = random_pairs(2 * CHUNK + 123, seed=1)
    gap = (aligned_hbox_rbox_iou(hboxes, rboxes) - kernel(hboxes,
                                                          rboxes)).abs()
    assert gap.max() < 1e-6  # the kernel's float32 rounding


def test_matches_the_kernel_on_the_anchors_of_a_dense_scene():
    """Every anchor-GT pair of a rendered synthetic DOTA scene whose hulls
    meet (the GT angles of the DOTA pipeline: 90 degrees for upright
    boxes)."""
    anchors = TASK_UTILS.build(dict(
        type='mmdet.AnchorGenerator', octave_base_scale=4,
        scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
        strides=[8, 16, 32, 64, 128]))
    priors = torch.cat(anchors.grid_priors(
        [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)], device='cpu'))
    _, samples = scene_batch(MODELS.build(tiny_rotated_retinanet_cfg()),
                             num_images=2)
    for sample in samples:
        boxes = sample.gt_instances.bboxes
        hulls = boxes.convert_to('hbox').tensor
        meet = ((priors[:, None, :2] < hulls[None, :, 2:]) &
                (hulls[None, :, :2] < priors[:, None, 2:])).all(-1)
        rows, cols = meet.nonzero(as_tuple=True)
        iou = aligned_hbox_rbox_iou(priors[rows], boxes.tensor[cols])
        expected = kernel(priors[rows], boxes.tensor[cols])
        assert (expected > 0.3).sum() > 500
        assert (iou - expected).abs().max() < 1e-6


def test_empty_input():
    iou = aligned_hbox_rbox_iou(torch.zeros(0, 4), torch.zeros(0, 5))
    assert iou.shape == (0, ) and iou.dtype == torch.float64
    assert np.isfinite(iou.numpy()).all()
