"""Overlaps of boxes of one type (see :mod:`mmrskd.structures.box_arrays`):
pairwise IoU, and the shapely polygons of quadrilaterals it uses."""
import numpy as np
import shapely
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmrotate.structures.bbox import rbbox_overlaps


def quadri_polygons(qboxes):
    """Shapely polygons of (N, 8) quadrilaterals.

    Self-intersecting quadrilaterals (vertices out of order, which DOTA has a
    few of) are replaced by their convex hull.

    Returns:
        np.ndarray: (N,) shapely geometries.
    """
    polys = shapely.polygons(
        np.asarray(qboxes, dtype=np.float64).reshape(-1, 4, 2))
    invalid = ~shapely.is_valid(polys)
    polys[invalid] = shapely.convex_hull(polys[invalid])
    return polys


def polygon_iou(polys1, polys2, eps=1e-6):
    """Element-wise IoU of two equally long (broadcastable) arrays of shapely
    polygons."""
    inter = shapely.area(shapely.intersection(polys1, polys2))
    union = shapely.area(polys1) + shapely.area(polys2) - inter
    return inter / np.maximum(union, eps)


def _quadri_iou(boxes1, boxes2):
    """Exact IoU of general quadrilaterals, computed only for pairs whose
    enclosing horizontal boxes overlap."""
    pts1 = boxes1.reshape(-1, 4, 2)
    pts2 = boxes2.reshape(-1, 4, 2)
    lo1, hi1 = pts1.min(axis=1), pts1.max(axis=1)
    lo2, hi2 = pts2.min(axis=1), pts2.max(axis=1)
    overlap = ((lo1[:, None] < hi2[None]) & (lo2[None] < hi1[:, None])).all(
        axis=-1)
    rows, cols = np.nonzero(overlap)
    ious = np.zeros((len(boxes1), len(boxes2)), dtype=np.float64)
    if len(rows):
        ious[rows, cols] = polygon_iou(
            quadri_polygons(boxes1)[rows], quadri_polygons(boxes2)[cols])
    return ious


def box_iou(boxes1, boxes2, box_type):
    """Pairwise IoU of two box arrays of the same type.

    hbox and rbox use the CPU kernels of mmdet (``bbox_overlaps``, float32)
    and mmrotate (``rbbox_overlaps``, which guards mmcv's ``box_iou_rotated``
    against degenerate sizes; float32). qbox is computed exactly with
    shapely: mmcv's ``box_iou_quadri`` tests whether a vertex lies inside the
    other box by projecting it on two edges, which is only right for
    parallelograms, and DOTA polygons are general quadrilaterals.

    Args:
        boxes1 (np.ndarray): (K, D) boxes.
        boxes2 (np.ndarray): (M, D) boxes.
        box_type (str): 'hbox', 'rbox' or 'qbox'.

    Returns:
        np.ndarray: (K, M) float64 IoUs.
    """
    if len(boxes1) == 0 or len(boxes2) == 0:
        return np.zeros((len(boxes1), len(boxes2)), dtype=np.float64)
    if box_type == 'qbox':
        return _quadri_iou(
            np.asarray(boxes1, np.float64), np.asarray(boxes2, np.float64))
    b1 = torch.from_numpy(np.ascontiguousarray(boxes1, dtype=np.float32))
    b2 = torch.from_numpy(np.ascontiguousarray(boxes2, dtype=np.float32))
    if box_type == 'hbox':
        ious = bbox_overlaps(b1, b2)
    else:
        ious = rbbox_overlaps(b1, b2)
    return ious.numpy().astype(np.float64)
