"""Patch names, coordinate mapping and the class-wise NMS of merging."""
import numpy as np
import pytest
from shapely.geometry import Polygon

from mmrskd.evaluation.functional import (classwise_nms, merge_patch_results,
                                          parse_patch_name)
from mmrskd.evaluation.functional.patch_merge import greedy_nms
from mmrskd.utils import MMRSKDError


@pytest.mark.parametrize('name, expected', [
    ('P0000__1024__0___0', ('P0000', 0, 0, 1.)),
    ('P2805__2048__1648___824', ('P2805', 1648, 824, 1.)),
    ('P0000__682__349___0', ('P0000', 349, 0, 1.)),
    ('P0000__1__100___200', ('P0000', 100, 200, 1.)),  # DOTA_devkit rate 1
    ('P0000__0.5__100___200', ('P0000', 100, 200, .5)),
    ('my__scene__1024__10___20', ('my__scene', 10, 20, 1.)),
    ('P0000', None),
    ('P0000__1024__0__0', None),
])
def test_parse_patch_name(name, expected):
    assert parse_patch_name(name) == expected


def _patch(name, bboxes, scores, labels):
    return dict(img_id=name, bboxes=np.asarray(bboxes, dtype=np.float64),
                scores=np.asarray(scores), labels=np.asarray(labels))


def test_merge_shifts_and_rescales_every_box_type():
    rbox = _patch('A__0.5__100___50', [[10, 20, 8, 4, 0.3]], [1.], [0])
    merged = merge_patch_results([rbox], 'rbox')[0]
    # full image = (patch + offset) / rate; sizes / rate; angle unchanged
    np.testing.assert_allclose(merged['bboxes'], [[220, 140, 16, 8, 0.3]])
    qbox = _patch('A__1024__100___50', [[0, 0, 4, 0, 4, 2, 0, 2]], [1.], [0])
    np.testing.assert_allclose(
        merge_patch_results([qbox], 'qbox')[0]['bboxes'],
        [[100, 50, 104, 50, 104, 52, 100, 52]])
    hbox = _patch('A__2__10___20', [[0, 0, 4, 2]], [1.], [0])
    np.testing.assert_allclose(
        merge_patch_results([hbox], 'hbox')[0]['bboxes'], [[5, 10, 7, 11]])


@pytest.mark.parametrize('box_type, box', [
    ('hbox', [0, 0, 40, 20]),
    ('rbox', [20, 10, 40, 20, 0.2]),
    ('qbox', [0, 0, 40, 0, 40, 20, 0, 20]),
])
def test_merge_removes_duplicates_per_class(box_type, box):
    dim = len(box)
    shifted = np.array(box, dtype=np.float64)
    shifted[0] -= 512  # the same object seen from the patch at x=512
    if box_type != 'rbox':
        shifted[0::2] = np.array(box[0::2]) - 512
    patches = [
        _patch('P1__1024__0___0', [box, box], [0.9, 0.6], [0, 1]),
        _patch('P1__1024__512___0', [shifted], [0.8], [0]),
        _patch('P2__1024__0___0', np.zeros((0, dim)), [], []),
    ]
    merged = merge_patch_results(patches, box_type)
    assert [m['img_id'] for m in merged] == ['P1', 'P2']
    # the class-0 copy is suppressed; the class-1 box with the same
    # coordinates is a different class and stays
    assert sorted(zip(merged[0]['labels'].tolist(),
                      merged[0]['scores'].tolist())) == [(0, 0.9), (1, 0.6)]
    assert merged[1]['bboxes'].shape == (0, dim)


def test_qbox_nms_uses_exact_overlap():
    # two trapezoids (not parallelograms) overlapping by a known IoU
    a = np.array([0, 0, 10, 0, 8, 10, 2, 10.])
    b = a + np.array([6, 0] * 4)
    pa, pb = Polygon(a.reshape(4, 2)), Polygon(b.reshape(4, 2))
    iou = pa.intersection(pb).area / pa.union(pb).area
    assert 0.1 < iou < 0.3
    boxes, scores = np.stack([a, b]), np.array([0.5, 0.9])
    assert greedy_nms(boxes, scores, 'qbox', iou - 1e-3).tolist() == [1]
    assert greedy_nms(boxes, scores, 'qbox', iou + 1e-3).tolist() == [1, 0]
    keep = classwise_nms(boxes, scores, np.array([0, 1]), 'qbox', 0.)
    assert sorted(keep.tolist()) == [0, 1]


def test_merge_rejects_unsplit_names():
    with pytest.raises(MMRSKDError, match="'P0001'.*dota_split"):
        merge_patch_results([_patch('P0001', [[0, 0, 1, 1]], [1], [0])],
                            'hbox')


def test_rbox_nms_equals_mmcv_nms_rotated_per_class():
    import torch
    from mmcv.ops import nms_rotated
    rng = np.random.default_rng(0)
    num = 300
    boxes = np.c_[rng.uniform(0, 300, (num, 2)),
                  rng.uniform(5, 60, (num, 2)),
                  rng.uniform(-np.pi / 2, np.pi / 2, num)]
    scores, labels = rng.random(num), rng.integers(0, 3, num)
    keep = classwise_nms(boxes, scores, labels, 'rbox', 0.1)
    expected = []
    for label in range(3):
        inds = np.flatnonzero(labels == label)
        _, kept = nms_rotated(
            torch.as_tensor(boxes[inds], dtype=torch.float32),
            torch.as_tensor(scores[inds], dtype=torch.float32), 0.1)
        expected += inds[kept.numpy()].tolist()
    assert 0.3 * num < len(keep) < 0.9 * num
    assert sorted(keep.tolist()) == sorted(expected)
