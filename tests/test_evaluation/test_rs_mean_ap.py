"""``eval_rs_map`` against hand-computed values, the independent reference
in ``rsdet_reference.py`` and pycocotools."""
import contextlib
import io
import math

import numpy as np
import pytest
import rsdet_reference as ref

from mmrskd.evaluation.functional import (COCO_IOU_THRS, eval_rs_map,
                                          format_map_table)
from mmrskd.structures import box_iou

NUM_CLASSES = 4  # 2: GT but never detected; 3: detections but no GT


def _jitter(rng, box, box_type, amount):
    """A detection near ``box``: shifted, rescaled and (rbox/qbox) turned."""
    if box_type == 'hbox':
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        cx, cy = cx + rng.uniform(-amount, amount) * w, cy + rng.uniform(
            -amount, amount) * h
        w, h = w * rng.uniform(1 - amount, 1 + amount), h * rng.uniform(
            1 - amount, 1 + amount)
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    if box_type == 'rbox':
        cx, cy, w, h, a = box
        return np.array([
            cx + rng.uniform(-amount, amount) * w,
            cy + rng.uniform(-amount, amount) * h,
            w * rng.uniform(1 - amount, 1 + amount),
            h * rng.uniform(1 - amount, 1 + amount),
            a + rng.uniform(-amount, amount)
        ])
    center = box.reshape(4, 2).mean(axis=0)
    size = np.linalg.norm(box[0:2] - box[2:4])
    shift = rng.uniform(-amount, amount, 2) * size / 2
    angle = rng.uniform(-amount, amount)
    rot = np.array([[math.cos(angle), -math.sin(angle)],
                    [math.sin(angle), math.cos(angle)]])
    pts = (box.reshape(4, 2) - center) @ rot.T * rng.uniform(
        1 - amount, 1 + amount) + center + shift
    return pts.reshape(-1)


def _random_box(rng, box_type):
    cx, cy = rng.uniform(30, 170, 2)
    w, h = rng.uniform(8, 40, 2)
    if box_type == 'hbox':
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    angle = rng.uniform(-math.pi / 2, math.pi / 2)
    if box_type == 'rbox':
        return np.array([cx, cy, w, h, angle])
    # a convex quadrilateral: a rotated rectangle with moved corners
    poly = ref.to_polygon([cx, cy, w, h, angle])
    pts = np.asarray(poly.exterior.coords[:4])
    pts += rng.uniform(-0.1, 0.1, (4, 2)) * min(w, h)
    return pts.reshape(-1)


def random_case(box_type, seed, num_imgs=8):
    """Random GT and detections with near-duplicates, difficult objects,
    an empty image, an image without GT, a class never detected (2) and a
    class without GT (3)."""
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for img in range(num_imgs):
        g_boxes, g_labels, g_ignore = [], [], []
        d_boxes, d_labels = [], []
        num_gts = 0 if img in (0, 1) else rng.integers(4, 12)
        for _ in range(num_gts):
            box, label = _random_box(rng, box_type), int(rng.integers(0, 3))
            g_boxes.append(box)
            g_labels.append(label)
            g_ignore.append(rng.random() < 0.15)
            if label == 2:
                continue
            for amount in (0.1, 0.3):  # a detection and a near-duplicate
                if rng.random() < (0.8 if amount == 0.1 else 0.35):
                    d_boxes.append(_jitter(rng, box, box_type, amount))
                    d_labels.append(label if rng.random() < 0.9 else 1 -
                                    label)
        if img != 0:  # false positives; image 1 has only these
            for k in range(2 if img == 1 else rng.integers(0, 3)):
                d_boxes.append(_random_box(rng, box_type))
                d_labels.append(3 if img == 1 else int(rng.choice([0, 1, 3])))
        dim = {'hbox': 4, 'rbox': 5, 'qbox': 8}[box_type]
        dets.append(
            dict(
                bboxes=np.asarray(d_boxes).reshape(-1, dim),
                scores=rng.random(len(d_boxes)),
                labels=np.asarray(d_labels, dtype=np.int64)))
        gts.append(
            dict(
                bboxes=np.asarray(g_boxes).reshape(-1, dim),
                labels=np.asarray(g_labels, dtype=np.int64),
                ignore_flags=np.asarray(g_ignore, dtype=bool)))
    return dets, gts


def hand_case():
    """2 GTs, 3 detections: d1 (0.9) IoU 0.88 with A, d2 (0.8) IoU 0.82
    with A (duplicate), d3 (0.7) IoU 1 with B."""
    dets = [
        dict(
            bboxes=np.array([[0, 0, 10, 8.8], [1, 0, 11, 10],
                             [20, 0, 30, 10.]]),
            scores=np.array([.9, .8, .7]),
            labels=np.array([0, 0, 0]))
    ]
    gts = [
        dict(
            bboxes=np.array([[0, 0, 10, 10], [20, 0, 30, 10.]]),
            labels=np.array([0, 0]),
            ignore_flags=np.array([False, False]))
    ]
    return dets, gts


def test_hand_case_voc():
    # TP, FP, TP: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3
    dets, gts = hand_case()
    area = eval_rs_map(dets, gts, 1, 'hbox', [0.5], 'area')
    assert area['mean_ap'][0] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert area['recall'][0, 0] == pytest.approx(1.0)
    assert area['num_gts'][0] == 2 and area['num_dets'][0] == 3
    # 11 points: 1 at recall 0..0.5 (6 points), 2/3 at 0.6..1 (5 points)
    voc07 = eval_rs_map(dets, gts, 1, 'hbox', [0.5], '11points')
    assert voc07['mean_ap'][0] == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_hand_case_coco():
    dets, gts = hand_case()
    result = eval_rs_map(dets, gts, 1, 'hbox', COCO_IOU_THRS, 'coco')
    # thresholds .5-.85: TP FP TP -> precision 1 up to recall .5 (51 of the
    # 101 points) and 2/3 above (50 points)
    low = (51 + 50 * 2 / 3) / 101
    # thresholds .9, .95: FP FP TP -> 1/3 up to recall .5, 0 above
    high = 51 / 3 / 101
    np.testing.assert_allclose(result['ap'][0], [low] * 8 + [high] * 2)
    assert result['mean_ap'].mean() == pytest.approx((8 * low + 2 * high) / 10)


def test_matching_rules_of_voc_and_coco():
    # d overlaps A by 0.54 and B by 0.82
    gts = [
        dict(
            bboxes=np.array([[0, 0, 10, 10], [4, 0, 14, 10.]]),
            labels=np.array([0, 0]),
            ignore_flags=np.array([False, False]))
    ]
    d = [3, 0, 13, 10.]

    def dets(first):
        return [dict(bboxes=np.array([first, d]), scores=np.array([.9, .8]),
                     labels=np.array([0, 0]))]

    # A taken first: VOC and COCO match d to B (its best GT), at 0.75 too
    for mode in ('area', 'coco'):
        result = eval_rs_map(dets([0, 0, 10, 10.]), gts, 1, 'hbox',
                             [0.5, 0.75], mode)
        np.testing.assert_allclose(result['ap'][0], [1, 1])
    # B taken first: VOC makes d an FP (its best GT is taken), COCO
    # falls back to the free A above 0.5 but not above 0.75
    voc = eval_rs_map(dets([4, 0, 14, 10.]), gts, 1, 'hbox', [0.5, 0.75],
                      'area')
    np.testing.assert_allclose(voc['ap'][0], [0.5, 0.5])
    coco = eval_rs_map(dets([4, 0, 14, 10.]), gts, 1, 'hbox', [0.5, 0.75],
                       'coco')
    np.testing.assert_allclose(coco['ap'][0], [1, 51 / 101])
    # d first: both take B for it, which leaves A to the exact detection
    for mode in ('area', 'coco'):
        result = eval_rs_map(
            [dict(bboxes=np.array([d, [0, 0, 10, 10.]]),
                  scores=np.array([.9, .8]), labels=np.array([0, 0]))],
            gts, 1, 'hbox', [0.5], mode)
        np.testing.assert_allclose(result['ap'][0], [1])


def test_difficult_gt_is_neither_hit_nor_miss():
    dets = [
        dict(
            bboxes=np.array([[40, 0, 50, 10.], [0, 0, 10, 10], [60, 0, 70,
                                                                 10]]),
            scores=np.array([.95, .9, .6]),
            labels=np.array([0, 0, 0]))
    ]
    gts = [
        dict(
            bboxes=np.array([[0, 0, 10, 10], [40, 0, 50, 10.]]),
            labels=np.array([0, 0]),
            ignore_flags=np.array([False, True]))
    ]
    for mode in ('area', 'coco'):
        result = eval_rs_map(dets, gts, 1, 'hbox', [0.5], mode)
        # the difficult match is dropped: TP then FP, one GT counted
        assert result['num_gts'][0] == 1
        assert result['ap'][0, 0] == pytest.approx(1.0)


def test_no_detections_and_no_gt():
    dets = [
        dict(bboxes=np.zeros((0, 5)), scores=np.zeros(0),
             labels=np.zeros(0, int))
    ]
    gts = [
        dict(
            bboxes=np.array([[10, 10, 4, 2, 0.]]),
            labels=np.array([1]),
            ignore_flags=np.array([False]))
    ]
    result = eval_rs_map(dets, gts, 3, 'rbox', [0.5, 0.75], '11points')
    assert np.isnan(result['ap'][[0, 2]]).all()  # no GT: not averaged
    np.testing.assert_array_equal(result['ap'][1], [0, 0])
    np.testing.assert_array_equal(result['mean_ap'], [0, 0])


@pytest.mark.parametrize('box_type', ['hbox', 'rbox', 'qbox'])
def test_box_iou_matches_shapely(box_type):
    rng = np.random.default_rng(1)
    boxes1 = np.stack([_random_box(rng, box_type) for _ in range(12)])
    boxes2 = np.stack([_jitter(rng, b, box_type, .3) for b in boxes1] +
                      [_random_box(rng, box_type) for _ in range(5)])
    expected = [[
        ref.polygon_iou(ref.to_polygon(a), ref.to_polygon(b)) for b in boxes2
    ] for a in boxes1]
    np.testing.assert_allclose(
        box_iou(boxes1, boxes2, box_type), expected, atol=1e-5)


@pytest.mark.parametrize('box_type', ['hbox', 'rbox', 'qbox'])
@pytest.mark.parametrize('seed', [0, 1])
def test_voc_matches_reference(box_type, seed):
    dets, gts = random_case(box_type, seed)
    map50 = []
    for mode, use_07 in (('11points', True), ('area', False)):
        for thr in (0.5, 0.7):
            result = eval_rs_map(dets, gts, NUM_CLASSES, box_type, [thr],
                                 mode)
            expected, class_aps = ref.voc_map(dets, gts, NUM_CLASSES, thr,
                                              use_07)
            assert result['mean_ap'][0] == pytest.approx(expected, abs=1e-4)
            for ap, exp in zip(result['ap'][:, 0], class_aps):
                assert (np.isnan(ap) if exp is None else ap == pytest.approx(
                    exp, abs=1e-4))
            map50 += [expected] if thr == 0.5 else []
    # the random case covers what it claims to
    assert result['num_gts'][2] > 0 and result['num_dets'][2] == 0
    assert result['num_gts'][3] == 0 and result['num_dets'][3] > 0
    assert all(0.3 < value < 0.95 for value in map50), map50


@pytest.mark.parametrize('box_type', ['hbox', 'rbox', 'qbox'])
def test_coco_matches_reference(box_type):
    dets, gts = random_case(box_type, seed=3)
    result = eval_rs_map(dets, gts, NUM_CLASSES, box_type, COCO_IOU_THRS,
                         'coco')
    expected, class_aps = ref.coco_map(dets, gts, NUM_CLASSES, COCO_IOU_THRS)
    assert result['mean_ap'].mean() == pytest.approx(expected, abs=1e-4)
    np.testing.assert_allclose(result['ap'], class_aps, atol=1e-4)


def test_hbox_coco_matches_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    dets, gts = random_case('hbox', seed=5, num_imgs=10)
    for gt in gts:  # pycocotools' ignore regions differ (IoF): none here
        gt['ignore_flags'][:] = False
    images, anns, results = [], [], []
    for img_id, (det, gt) in enumerate(zip(dets, gts), start=1):
        images.append(dict(id=img_id, width=200, height=200))
        for box, label in zip(gt['bboxes'], gt['labels']):
            x1, y1, x2, y2 = box.tolist()
            anns.append(
                dict(id=len(anns) + 1, image_id=img_id,
                     category_id=int(label) + 1,
                     bbox=[x1, y1, x2 - x1, y2 - y1],
                     area=(x2 - x1) * (y2 - y1), iscrowd=0))
        for box, score, label in zip(det['bboxes'], det['scores'],
                                     det['labels']):
            x1, y1, x2, y2 = box.tolist()
            results.append(
                dict(image_id=img_id, category_id=int(label) + 1,
                     bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dict(
            images=images,
            annotations=anns,
            categories=[dict(id=c + 1) for c in range(NUM_CLASSES)])
        coco_gt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), 'bbox')
        coco_eval.params.maxDets = [1, 10, 100000]
        coco_eval.evaluate()
        coco_eval.accumulate()
    precision = coco_eval.eval['precision'][:, :, :, 0, -1]  # (T, R, K)
    valid = precision[0, 0] > -1
    expected = np.full((NUM_CLASSES, 10), np.nan)
    expected[valid] = precision[:, :, valid].mean(axis=1).T

    result = eval_rs_map(dets, gts, NUM_CLASSES, 'hbox', COCO_IOU_THRS,
                         'coco')
    np.testing.assert_allclose(result['ap'], expected, atol=1e-4)
    assert result['mean_ap'].mean() == pytest.approx(
        precision[precision > -1].mean(), abs=1e-4)


def test_map_table_lists_every_class():
    dets, gts = hand_case()
    result = eval_rs_map(dets, gts, 2, 'hbox', COCO_IOU_THRS, 'coco')
    table = format_map_table(result, ['plane', 'ship'], (0.5, 0.75))
    lines = table.splitlines()
    assert 'AP50' in lines[1] and 'AP75' in lines[1] and 'recall' in lines[1]
    plane = next(line for line in lines if 'plane' in line)
    assert '0.835' in plane and '| 2 ' in plane and '| 3 ' in plane
    assert '-' in next(line for line in lines if 'ship' in line)
