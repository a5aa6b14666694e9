"""Merge detections on DOTA patches back onto the full images."""
import re
from collections import OrderedDict

import numpy as np
import torch
from mmcv.ops import batched_nms

from mmrskd.structures import box_iou, polygon_iou, quadri_polygons
from mmrskd.utils import MMRSKDError

# name__field__x___y; the field is mmrotate's window size in original pixels
# (P0000__1024__0___0) or DOTA_devkit's resize rate (P0000__0.5__0___0)
_PATCH_NAME = re.compile(
    r'^(?P<name>.+)__(?P<field>\d+(?:\.\d+)?)__(?P<x>\d+)___(?P<y>\d+)$')
# DOTA_devkit rates are small numbers; mmrotate windows are hundreds of px
_MAX_DEVKIT_RATE = 10.


def parse_patch_name(patch_name):
    """Where a patch lies in its full image.

    Args:
        patch_name (str): ``P0000__1024__0___0`` (mmrotate's splitter and
            ``tools/dataset_converters/dota_split.py``: name, window size,
            x, y in full-image pixels) or ``P0000__0.5__0___0`` (DOTA_devkit:
            name, rate, left, up in pixels of the image resized by rate). A
            middle field of at most 10 is read as a DOTA_devkit rate.

    Returns:
        tuple: ``(name, x, y, rate)`` such that a full-image point is
        ``(patch_point + (x, y)) / rate``; ``None`` if the name has no
        patch suffix.
    """
    match = _PATCH_NAME.match(patch_name)
    if match is None:
        return None
    field = float(match['field'])
    rate = field if field <= _MAX_DEVKIT_RATE else 1.
    if rate <= 0:
        return None
    return match['name'], int(match['x']), int(match['y']), rate


def patch_to_full_image(bboxes, box_type, x, y, rate):
    """Map (N, D) patch boxes to full-image coordinates (a new array)."""
    bboxes = np.array(bboxes, dtype=np.float64, copy=True)
    if box_type == 'rbox':
        bboxes[:, :2] = (bboxes[:, :2] + (x, y)) / rate
        bboxes[:, 2:4] /= rate
    else:
        bboxes[:, 0::2] = (bboxes[:, 0::2] + x) / rate
        bboxes[:, 1::2] = (bboxes[:, 1::2] + y) / rate
    return bboxes


def _enclosing_hboxes(bboxes, box_type):
    """(N, 4) ``x1, y1, x2, y2`` around (N, 5) rboxes or (N, 8) qboxes."""
    if box_type == 'qbox':
        pts = bboxes.reshape(-1, 4, 2)
        return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
    ctr, w, h, angle = bboxes[:, :2], bboxes[:, 2], bboxes[:, 3], bboxes[:, 4]
    cos, sin = np.abs(np.cos(angle)), np.abs(np.sin(angle))
    half = np.stack([w * cos + h * sin, w * sin + h * cos], axis=1) / 2
    return np.concatenate([ctr - half, ctr + half], axis=1)


def greedy_nms(bboxes, scores, box_type, iou_thr):
    """Greedy NMS of rotated or quadrilateral boxes of one class.

    IoU (:func:`~mmrskd.structures.box_iou`) is only computed
    between boxes whose enclosing horizontal boxes overlap, which makes
    merging thousands of detections per DOTA image fast on the CPU (mmcv's
    ``nms_rotated`` CPU kernel compares all pairs), and exact for general
    quadrilaterals (mmcv's ``nms_quadri`` shares ``box_iou_quadri``'s
    parallelogram-only overlap test).

    Args:
        bboxes (np.ndarray): (N, 5) rboxes or (N, 8) qboxes.
        scores (np.ndarray): (N,) scores.
        box_type (str): 'rbox' or 'qbox'.
        iou_thr (float): drop boxes overlapping a kept one by more.

    Returns:
        np.ndarray: kept indices, by descending score.
    """
    order = np.argsort(-np.asarray(scores), kind='stable')
    bboxes = np.asarray(bboxes, dtype=np.float64)[order]
    hboxes = _enclosing_hboxes(bboxes, box_type)
    polys = quadri_polygons(bboxes) if box_type == 'qbox' else None
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        rest = np.flatnonzero(~suppressed[i + 1:]) + i + 1
        x1, y1, x2, y2 = hboxes[i]
        rest = rest[(hboxes[rest, 0] < x2) & (hboxes[rest, 2] > x1)
                    & (hboxes[rest, 1] < y2) & (hboxes[rest, 3] > y1)]
        if len(rest):
            ious = (polygon_iou(polys[i], polys[rest]) if polys is not None
                    else box_iou(bboxes[i:i + 1], bboxes[rest], box_type)[0])
            suppressed[rest[ious > iou_thr]] = True
    return np.asarray(keep, dtype=np.int64)


def classwise_nms(bboxes, scores, labels, box_type, iou_thr):
    """Class-wise NMS on the CPU: mmcv's ``batched_nms`` for hbox,
    :func:`greedy_nms` per class for rbox and qbox.

    Args:
        bboxes (np.ndarray): (N, D) boxes.
        scores (np.ndarray): (N,) scores.
        labels (np.ndarray): (N,) class indices.
        box_type (str): 'hbox', 'rbox' or 'qbox'.
        iou_thr (float): boxes overlapping a higher-scored box of the same
            class by more than this are dropped.

    Returns:
        np.ndarray: indices of the kept boxes.
    """
    if len(bboxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if box_type == 'hbox':
        _, keep = batched_nms(
            torch.from_numpy(np.ascontiguousarray(bboxes, np.float32)),
            torch.from_numpy(np.ascontiguousarray(scores, np.float32)),
            torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            dict(type='nms', iou_threshold=iou_thr))
        return keep.numpy().astype(np.int64)
    labels = np.asarray(labels)
    keeps = []
    for label in np.unique(labels):
        inds = np.flatnonzero(labels == label)
        keeps.append(inds[greedy_nms(bboxes[inds], scores[inds], box_type,
                                     iou_thr)])
    return np.concatenate(keeps)


def merge_patch_results(patch_results, box_type, nms_iou_thr=0.1):
    """Merge per-patch detections into per-image detections.

    Args:
        patch_results (Sequence[dict]): per patch ``img_id`` (the patch name),
            ``bboxes`` (N, D), ``scores`` (N,) and ``labels`` (N,).
        box_type (str): 'hbox', 'rbox' or 'qbox'.
        nms_iou_thr (float): IoU threshold of the class-wise NMS that removes
            the duplicates of objects seen by overlapping patches.

    Returns:
        list[dict]: per full image, in order of first appearance, ``img_id``
        (the full image name), ``bboxes``, ``scores`` and ``labels``. Images
        whose patches have no detections are included, empty.
    """
    grouped = OrderedDict()
    for result in patch_results:
        located = parse_patch_name(str(result['img_id']))
        if located is None:
            raise MMRSKDError(
                f"merge_patches: image id {result['img_id']!r} is not a patch "
                'name like P0000__1024__0___0 (name__size__x___y); split the '
                'images with tools/dataset_converters/dota_split.py, or set '
                'merge_patches=False')
        name, x, y, rate = located
        parts = grouped.setdefault(name, ([], [], []))
        parts[0].append(
            patch_to_full_image(result['bboxes'], box_type, x, y, rate))
        parts[1].append(np.asarray(result['scores'], dtype=np.float64))
        parts[2].append(np.asarray(result['labels'], dtype=np.int64))

    merged = []
    for name, (bboxes, scores, labels) in grouped.items():
        bboxes = np.concatenate(bboxes)
        scores, labels = np.concatenate(scores), np.concatenate(labels)
        keep = classwise_nms(bboxes, scores, labels, box_type, nms_iou_thr)
        merged.append(
            dict(
                img_id=name,
                bboxes=bboxes[keep],
                scores=scores[keep],
                labels=labels[keep]))
    return merged
