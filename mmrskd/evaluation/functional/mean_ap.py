"""Mean average precision for horizontal, rotated and quadrilateral boxes.

One implementation serves the two protocols remote-sensing papers report:

* **VOC** (``mode='11points'`` as VOC07 and the DOTA server, ``'area'`` as
  VOC12): a detection is matched to the GT it overlaps most (difficult ones
  included); above the threshold it is a TP if that GT is still free, an FP if
  it is taken, and neither if the GT is ignored (difficult / ``ignore_flag``),
  exactly as mmdet's ``tpfp_default``, mmrotate's ``eval_rbbox_map`` and
  DOTA_devkit. AP comes from mmdet's ``average_precision``, so numbers equal
  theirs (its 11 recall thresholds are ``np.arange(0, 1.1, 0.1)``, as in
  DOTA_devkit, where 0.3, 0.6 and 0.7 lie one ulp above the exact tenths).
* **COCO** (``mode='coco'``): each detection takes the free non-ignored GT with
  the highest IoU above the threshold, else it is ignored if it overlaps an
  ignored GT (ignored GTs absorb any number of detections, like crowd regions,
  but with the plain IoU), else it is an FP; AP is the mean precision at 101
  recall points, as pycocotools' ``COCOeval``. There is no cap on detections
  per image (COCOeval's ``maxDets``): mmdet uses 1000, DOTA images exceed it.

What upstream lacks and this adds: hbox, rbox and qbox in one code path, exact
IoU of general quadrilaterals (mmcv's ``box_iou_quadri``, used by mmrotate's
qbox evaluation, is only right for parallelograms), COCO matching for rotated
boxes, IoU computed once per image and class and reused for every threshold
(mmrotate recomputes it and spawns a process pool per threshold), IoU in
blocks of detections so crowded 4k-pixel DOTA images stay in memory, and
stable score sorting so ties are ranked reproducibly.
"""
import numpy as np
from mmdet.evaluation.functional import average_precision
from terminaltables import AsciiTable

from mmrskd.structures import box_iou

COCO_IOU_THRS = np.linspace(
    .5, .95, int(np.round((.95 - .5) / .05)) + 1, endpoint=True)
COCO_RECALL_THRS = np.linspace(
    .0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
AP_MODES = ('11points', 'area', 'coco')

# status of a detection after matching
FALSE_POSITIVE, TRUE_POSITIVE, IGNORED = 0, 1, -1


def candidate_pairs(dets, gts, box_type, min_iou, block_size=2048):
    """All (detection, GT) pairs with IoU >= ``min_iou``.

    Args:
        dets (np.ndarray): (K, D) detections.
        gts (np.ndarray): (M, D) ground truths.
        box_type (str): 'hbox', 'rbox' or 'qbox'.
        min_iou (float): the lowest IoU threshold that will be evaluated.
        block_size (int): detections per IoU block, bounding memory to
            ``block_size * M`` floats.

    Returns:
        tuple[np.ndarray]: ``det_inds`` (P,), ``gt_inds`` (P,), ``ious`` (P,),
        sorted by detection, then GT.
    """
    det_inds, gt_inds, ious = [], [], []
    for start in range(0, len(dets), block_size):
        block = box_iou(dets[start:start + block_size], gts, box_type)
        rows, cols = np.nonzero(block >= min_iou)
        det_inds.append(rows + start)
        gt_inds.append(cols)
        ious.append(block[rows, cols])
    if not det_inds:
        return (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.float64))
    return (np.concatenate(det_inds).astype(np.int64),
            np.concatenate(gt_inds).astype(np.int64), np.concatenate(ious))


def match_voc(num_dets, det_inds, gt_inds, ious, gt_ignore, iou_thr):
    """VOC matching of score-sorted detections of one image and class.

    Args:
        num_dets (int): K, detections sorted by descending score.
        det_inds, gt_inds, ious (np.ndarray): (P,) pairs from
            :func:`candidate_pairs`, computed with ``min_iou <= iou_thr``.
        gt_ignore (np.ndarray): (M,) bool, difficult / ignored GTs.
        iou_thr (float): IoU threshold.

    Returns:
        np.ndarray: (K,) int8 status (TRUE_POSITIVE, FALSE_POSITIVE, IGNORED).
    """
    status = np.full(num_dets, FALSE_POSITIVE, dtype=np.int8)
    if len(det_inds) == 0:
        return status
    # the most-overlapping GT of each detection (first one on ties, as
    # np.argmax): order pairs by detection, IoU descending, GT index
    order = np.lexsort((gt_inds, -ious, det_inds))
    dets, first = np.unique(det_inds[order], return_index=True)
    best_gt, best_iou = gt_inds[order][first], ious[order][first]
    hit = best_iou >= iou_thr
    dets, best_gt = dets[hit], best_gt[hit]
    ignored = gt_ignore[best_gt]
    status[dets[ignored]] = IGNORED
    dets, best_gt = dets[~ignored], best_gt[~ignored]
    # dets ascend, so the first detection of each GT has the highest score
    _, first_of_gt = np.unique(best_gt, return_index=True)
    status[dets[first_of_gt]] = TRUE_POSITIVE
    return status


def match_coco(num_dets, det_inds, gt_inds, ious, gt_ignore, iou_thr):
    """COCO matching of score-sorted detections of one image and class.

    Arguments and return value as :func:`match_voc`.
    """
    status = np.full(num_dets, FALSE_POSITIVE, dtype=np.int8)
    keep = ious >= iou_thr
    det_inds, gt_inds, ious = det_inds[keep], gt_inds[keep], ious[keep]
    if len(det_inds) == 0:
        return status
    gt_taken = np.zeros(len(gt_ignore), dtype=bool)
    starts = np.flatnonzero(np.diff(det_inds, prepend=-1))
    ends = np.append(starts[1:], len(det_inds))
    for start, end in zip(starts, ends):
        gts = gt_inds[start:end]
        free = ~gt_ignore[gts] & ~gt_taken[gts]
        if free.any():
            best = gts[np.argmax(np.where(free, ious[start:end], -1.))]
            gt_taken[best] = True
            status[det_inds[start]] = TRUE_POSITIVE
        elif gt_ignore[gts].any():
            status[det_inds[start]] = IGNORED
    return status


def precision_recall(status, scores, num_gts):
    """Cumulative precision and recall over detections of all images.

    Args:
        status (np.ndarray): (K,) match status per detection.
        scores (np.ndarray): (K,) scores; ranked descending, ties keep order.
        num_gts (int): non-ignored GTs of the class.

    Returns:
        tuple[np.ndarray]: recalls (K',) and precisions (K',) over the
        detections that are not ignored.
    """
    status = status[np.argsort(-scores, kind='stable')]
    status = status[status != IGNORED]
    tp = np.cumsum(status == TRUE_POSITIVE, dtype=np.float64)
    fp = np.cumsum(status == FALSE_POSITIVE, dtype=np.float64)
    eps = np.finfo(np.float32).eps
    return tp / max(num_gts, eps), tp / np.maximum(tp + fp, eps)


def coco_average_precision(recalls, precisions):
    """COCO 101-point interpolated AP, as pycocotools' ``accumulate``.

    Args:
        recalls (np.ndarray): (K,) non-decreasing recalls.
        precisions (np.ndarray): (K,) precisions.

    Returns:
        float: mean of the precision envelope sampled at 101 recall points
        (0 where the recall is never reached).
    """
    envelope = np.maximum.accumulate(precisions[::-1])[::-1]
    inds = np.searchsorted(recalls, COCO_RECALL_THRS, side='left')
    sampled = np.zeros(len(COCO_RECALL_THRS))
    reached = inds < len(envelope)
    sampled[reached] = envelope[inds[reached]]
    return float(sampled.mean())


def eval_rs_map(det_results,
                gt_results,
                num_classes,
                box_type='rbox',
                iou_thrs=(0.5, ),
                mode='11points'):
    """Per-class AP and mAP at several IoU thresholds.

    Args:
        det_results (list[dict]): per image ``bboxes`` (N, D), ``scores``
            (N,) and ``labels`` (N,) numpy arrays, D given by ``box_type``.
        gt_results (list[dict]): per image ``bboxes`` (M, D), ``labels`` (M,)
            and ``ignore_flags`` (M,) bool numpy arrays.
        num_classes (int): number of classes C.
        box_type (str): 'hbox', 'rbox' or 'qbox'.
        iou_thrs (Sequence[float]): T thresholds in (0, 1].
        mode (str): '11points', 'area' or 'coco' (see the module docstring).

    Returns:
        dict: ``iou_thrs`` (T,); ``num_gts`` (C,) non-ignored GTs;
        ``num_dets`` (C,); ``recall`` (C, T) final recall; ``ap`` (C, T),
        NaN for classes without GT; ``mean_ap`` (T,), the mean over classes
        with GT (0 when there are none).
    """
    assert mode in AP_MODES, f'mode must be one of {AP_MODES}'
    assert len(det_results) == len(gt_results)
    iou_thrs = np.asarray(iou_thrs, dtype=np.float64).reshape(-1)
    num_thrs = len(iou_thrs)
    match = match_coco if mode == 'coco' else match_voc

    num_gts = np.zeros(num_classes, dtype=np.int64)
    num_dets = np.zeros(num_classes, dtype=np.int64)
    recall = np.zeros((num_classes, num_thrs))
    ap = np.full((num_classes, num_thrs), np.nan)
    for cls in range(num_classes):
        statuses = [[] for _ in range(num_thrs)]
        scores = []
        for det, gt in zip(det_results, gt_results):
            gt_mask = gt['labels'] == cls
            gt_ignore = np.asarray(gt['ignore_flags'], dtype=bool)[gt_mask]
            num_gts[cls] += int((~gt_ignore).sum())
            det_mask = det['labels'] == cls
            if not det_mask.any():
                continue
            order = np.argsort(-det['scores'][det_mask], kind='stable')
            boxes = det['bboxes'][det_mask][order]
            scores.append(det['scores'][det_mask][order])
            pairs = candidate_pairs(boxes, gt['bboxes'][gt_mask], box_type,
                                    iou_thrs.min())
            for t, iou_thr in enumerate(iou_thrs):
                statuses[t].append(match(len(boxes), *pairs, gt_ignore,
                                         iou_thr))
        scores = np.concatenate(scores) if scores else np.zeros(0)
        num_dets[cls] = len(scores)
        if num_gts[cls] == 0:
            continue
        for t in range(num_thrs):
            status = (np.concatenate(statuses[t])
                      if statuses[t] else np.zeros(0, dtype=np.int8))
            recalls, precisions = precision_recall(status, scores,
                                                   num_gts[cls])
            recall[cls, t] = recalls[-1] if len(recalls) else 0.
            if mode == 'coco':
                ap[cls, t] = coco_average_precision(recalls, precisions)
            else:
                ap[cls, t] = float(
                    average_precision(recalls, precisions, mode))
    with_gt = num_gts > 0
    mean_ap = ap[with_gt].mean(axis=0) if with_gt.any() else np.zeros(
        num_thrs)
    return dict(
        iou_thrs=iou_thrs,
        num_gts=num_gts,
        num_dets=num_dets,
        recall=recall,
        ap=ap,
        mean_ap=mean_ap)


def iou_thr_name(iou_thr):
    """'AP50' style column name of an IoU threshold."""
    return f'AP{int(round(iou_thr * 100))}'


def format_map_table(result, classes, table_thrs=None):
    """The per-class table of :func:`eval_rs_map`, as mmdet's
    ``print_map_summary`` prints it.

    Args:
        result (dict): output of :func:`eval_rs_map`.
        classes (Sequence[str]): C class names.
        table_thrs (Sequence[float], optional): thresholds that get an AP
            column; all by default. With several thresholds an ``AP`` column
            holds the mean over all of them.

    Returns:
        str: the table; with several thresholds, recall is given at the
        lowest.
    """
    iou_thrs = result['iou_thrs']
    table_thrs = iou_thrs if table_thrs is None else table_thrs
    cols = [int(np.argmin(np.abs(iou_thrs - thr))) for thr in table_thrs]
    low = int(np.argmin(iou_thrs))
    multi = len(iou_thrs) > 1
    header = ['class', 'gts', 'dets',
              f'recall@{iou_thrs[low]:g}' if multi else 'recall']
    header += (['AP'] if multi else []) + [
        iou_thr_name(iou_thrs[c]) for c in cols
    ]

    def fmt(value):
        return '-' if np.isnan(value) else f'{value:.3f}'

    rows = [header]
    for c, name in enumerate(classes):
        row = [name, result['num_gts'][c], result['num_dets'][c]]
        row.append(fmt(result['recall'][c, low]
                       if result['num_gts'][c] else np.nan))
        if multi:
            row.append(fmt(np.mean(result['ap'][c])))
        rows.append(row + [fmt(result['ap'][c, col]) for col in cols])
    mean_row = ['mAP', '', '', '']
    if multi:
        mean_row.append(fmt(result['mean_ap'].mean()))
    rows.append(mean_row + [fmt(result['mean_ap'][col]) for col in cols])
    table = AsciiTable(rows)
    table.inner_footing_row_border = True
    return table.table
