"""Independent VOC and COCO AP over polygons (plain numpy + shapely).

Written from the protocol descriptions (DOTA_devkit's
``dota_evaluation_task1.py`` for VOC, pycocotools' ``evaluateImg`` /
``accumulate`` for COCO), sharing no code with mmrskd, to cross-check
``mmrskd.evaluation``. Slow (pure Python loops): test-sized inputs only.
"""
import math

import numpy as np
from shapely.geometry import Polygon


def to_polygon(box):
    """Shapely polygon of an hbox (4), rbox (5) or qbox (8)."""
    box = [float(v) for v in box]
    if len(box) == 4:
        x1, y1, x2, y2 = box
        points = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    elif len(box) == 5:
        # rbox: angle in radians, positive from +x towards +y (image y down)
        cx, cy, w, h, angle = box
        cos, sin = math.cos(angle), math.sin(angle)
        points = [(cx + cos * dx - sin * dy, cy + sin * dx + cos * dy)
                  for dx, dy in ((w / 2, h / 2), (w / 2, -h / 2),
                                 (-w / 2, -h / 2), (-w / 2, h / 2))]
    else:
        points = list(zip(box[0::2], box[1::2]))
    return Polygon(points)


def polygon_iou(p, q):
    inter = p.intersection(q).area
    union = p.area + q.area - inter
    return inter / union if union > 0 else 0.


def voc_ap(rec, prec, use_07_metric):
    """DOTA_devkit's ``voc_ap``."""
    if use_07_metric:
        ap = 0.
        for t in np.arange(0., 1.1, 0.1):
            p = np.max(prec[rec >= t]) if np.sum(rec >= t) > 0 else 0.
            ap += p / 11.
        return ap
    mrec = np.concatenate(([0.], rec, [1.]))
    mpre = np.concatenate(([0.], prec, [0.]))
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _class_items(dets, gts, cls):
    """Per image: detections (score, polygon) and GTs (polygon, ignore)."""
    det_items, gt_items = [], []
    for det, gt in zip(dets, gts):
        det_items.append([(float(s), to_polygon(b))
                          for b, s, lab in zip(det['bboxes'], det['scores'],
                                               det['labels']) if lab == cls])
        gt_items.append([(to_polygon(b), bool(ign))
                         for b, lab, ign in zip(gt['bboxes'], gt['labels'],
                                                gt['ignore_flags'])
                         if lab == cls])
    return det_items, gt_items


def voc_map(dets, gts, num_classes, iou_thr, use_07_metric):
    """Returns (mAP, per-class AP list with None for classes without GT)."""
    aps = []
    for cls in range(num_classes):
        det_items, gt_items = _class_items(dets, gts, cls)
        npos = sum(not ign for items in gt_items for _, ign in items)
        if npos == 0:
            aps.append(None)
            continue
        # all detections of the class, by descending score (stable)
        flat = [(score, img, poly) for img, items in enumerate(det_items)
                for score, poly in items]
        order = sorted(range(len(flat)), key=lambda i: -flat[i][0])
        taken = [[False] * len(items) for items in gt_items]
        tp, fp = np.zeros(len(flat)), np.zeros(len(flat))
        for rank, i in enumerate(order):
            _, img, poly = flat[i]
            ious = [polygon_iou(poly, g) for g, _ in gt_items[img]]
            if ious and max(ious) >= iou_thr:
                j = int(np.argmax(ious))
                if gt_items[img][j][1]:
                    continue  # difficult: neither TP nor FP
                if not taken[img][j]:
                    taken[img][j] = True
                    tp[rank] = 1
                else:
                    fp[rank] = 1
            else:
                fp[rank] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(voc_ap(rec, prec, use_07_metric))
    valid = [a for a in aps if a is not None]
    return (float(np.mean(valid)) if valid else 0.), aps


def coco_map(dets, gts, num_classes, iou_thrs):
    """COCO AP averaged over ``iou_thrs``; ignored GTs act as crowd regions
    (any number of detections may match them) with plain IoU.

    Returns (mAP, (C, T) AP array with NaN for classes without GT).
    """
    rec_thrs = np.linspace(.0, 1.00, 101)
    ap = np.full((num_classes, len(iou_thrs)), np.nan)
    for cls in range(num_classes):
        det_items, gt_items = _class_items(dets, gts, cls)
        npig = sum(not ign for items in gt_items for _, ign in items)
        if npig == 0:
            continue
        for t, thr in enumerate(iou_thrs):
            scores, matched, ignored = [], [], []
            for d_items, g_items in zip(det_items, gt_items):
                d_order = np.argsort([-s for s, _ in d_items],
                                     kind='mergesort')
                g_order = np.argsort([ign for _, ign in g_items],
                                     kind='mergesort')
                g_sorted = [g_items[i] for i in g_order]
                gt_match = [False] * len(g_sorted)
                for di in d_order:
                    score, poly = d_items[di]
                    best, m = min(thr, 1 - 1e-10), -1
                    for gi, (g, ign) in enumerate(g_sorted):
                        if gt_match[gi] and not ign:
                            continue
                        if m > -1 and not g_sorted[m][1] and ign:
                            break
                        iou = polygon_iou(poly, g)
                        if iou < best:
                            continue
                        best, m = iou, gi
                    scores.append(score)
                    if m == -1:
                        matched.append(False)
                        ignored.append(False)
                    else:
                        gt_match[m] = True
                        matched.append(True)
                        ignored.append(g_sorted[m][1])
            order = np.argsort(-np.asarray(scores), kind='mergesort')
            matched = np.asarray(matched, bool)[order]
            ignored = np.asarray(ignored, bool)[order]
            tps = np.cumsum(matched & ~ignored)
            fps = np.cumsum(~matched & ~ignored)
            rc = tps / npig
            pr = tps / (tps + fps + np.spacing(1))
            pr = list(pr)
            for i in range(len(pr) - 1, 0, -1):
                pr[i - 1] = max(pr[i - 1], pr[i])
            q = np.zeros(len(rec_thrs))
            inds = np.searchsorted(rc, rec_thrs, side='left')
            for ri, pi in enumerate(inds):
                if pi < len(pr):
                    q[ri] = pr[pi]
            ap[cls, t] = q.mean()
    valid = ~np.isnan(ap[:, 0])
    return (float(ap[valid].mean()) if valid.any() else 0.), ap
