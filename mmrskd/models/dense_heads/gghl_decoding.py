"""GGHL's output layout and box decoding: raw head outputs of a level to
distances, boxes, gliding-vertex offsets and area ratios, and one image's
outputs to scored quadrilaterals (before NMS)."""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import distance2bbox
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.coders import GVFixCoder
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes, qbox2rbox
from torch import Tensor

# channel layout of the localisation branch output
LOC_SPLIT = (4, 4, 1, 1)  # ltrb, vertex offsets, area ratio, objectness
NUM_LOC_CHANNELS = sum(LOC_SPLIT)
# raw ltrb above this (1e4 strides, beyond any image) are clipped before
# exp(), which overflows fp32 at 88: an inf side gives NaN IoUs, and
# through them NaN losses even where a mask weighs them 0 (mmdet's box
# coders clip their log deltas the same way)
MAX_LOG_DISTANCE = math.log(1e4)


def flatten_level(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H * W, C), row-major like the prior generator."""
    return x.permute(0, 2, 3, 1).reshape(x.size(0), -1, x.size(1))


def decode_level(bbox_pred: Tensor, orc_pred: Tensor, ratio_pred: Tensor,
                 points: Tensor, stride: float, hbb_ratio_thr: float,
                 max_shape: Optional[Sequence[int]] = None
                 ) -> Dict[str, Tensor]:
    """Decode raw outputs of one level (flattened).

    Args:
        bbox_pred (Tensor): (..., N, 4) raw ltrb.
        orc_pred (Tensor): (..., N, 4) raw offsets.
        ratio_pred (Tensor): (..., N, 1) raw ratios.
        points (Tensor): (N, 2) cell centres.
        stride (float): stride of the level.
        hbb_ratio_thr (float): area ratio above which the offsets are
            zeroed (the box is its HBB).
        max_shape (Sequence[int], optional): (H, W) to clip HBBs to.

    Returns:
        dict[str, Tensor]: ``distances`` (..., N, 4) ltrb pixels (at
        most ``1e4 * stride``),
        ``bboxes`` (..., N, 4) HBB xyxy, ``orc`` (..., N, 4) offsets in
        [0, 1], ``ratios`` (..., N) area ratios in [0, 1].
    """
    distances = bbox_pred.clamp(max=MAX_LOG_DISTANCE).exp() * stride
    bboxes = distance2bbox(points.expand_as(distances[..., :2]), distances,
                           max_shape)
    ratios = F.hardsigmoid(ratio_pred[..., 0])
    orc = (orc_pred.sigmoid().clamp(0.01, 1) - 0.01) / 0.99
    # near-horizontal objects are their HBB
    orc = orc * (ratios <= hbb_ratio_thr)[..., None]
    return dict(distances=distances, bboxes=bboxes, orc=orc, ratios=ratios)


def decode_image(level_outputs: List[Sequence[Tensor]],
                 points: List[Tensor], strides: Sequence[int],
                 hbb_ratio_thr: float, orc_coder: GVFixCoder,
                 box_type: str, img_shape: Sequence[int],
                 nms_pre: int = -1, score_thr: float = 0) -> InstanceData:
    """Score-filter and decode the outputs of one image.

    Args:
        level_outputs (list[Sequence[Tensor]]): per level the class
            logits, raw ltrb, offsets, ratios and objectness, each
            (C_k, H, W).
        points (list[Tensor]): cell centres (H * W, 2) per level.
        strides (Sequence[int]): strides of the levels.
        hbb_ratio_thr (float): see :func:`decode_level`.
        orc_coder (GVFixCoder): HBB + offsets to quadrilaterals.
        box_type (str): ``'qbox'`` or ``'rbox'`` (``le90``).
        img_shape (Sequence[int]): (H, W) to clip HBBs to.
        nms_pre (int): candidates kept per level, -1 for all.
        score_thr (float): score threshold.

    Returns:
        InstanceData: ``bboxes`` (``QuadriBoxes`` (K, 8) or
        ``RotatedBoxes`` (K, 5)), ``scores`` (K,), ``labels`` (K,).
    """
    all_qboxes, all_scores, all_labels = [], [], []
    for outputs, level_points, stride in zip(level_outputs, points, strides):
        cls_score, bbox_pred, orc_pred, ratio_pred, objectness = [
            flatten_level(pred[None].detach())[0] for pred in outputs
        ]
        scores = cls_score.sigmoid() * objectness.sigmoid()
        topk = nms_pre if nms_pre > 0 else scores.numel()
        scores, labels, keep, _ = filter_scores_and_topk(
            scores, score_thr, topk)
        decoded = decode_level(bbox_pred[keep], orc_pred[keep],
                               ratio_pred[keep], level_points[keep], stride,
                               hbb_ratio_thr, img_shape)
        all_qboxes.append(orc_coder.decode(decoded['bboxes'],
                                           decoded['orc']))
        all_scores.append(scores)
        all_labels.append(labels)
    qboxes = torch.cat(all_qboxes)
    results = InstanceData()
    if box_type == 'qbox':
        results.bboxes = QuadriBoxes(qboxes)
    else:
        results.bboxes = RotatedBoxes(
            RotatedBoxes(qbox2rbox(qboxes)).regularize_boxes('le90'))
    results.scores = torch.cat(all_scores)
    results.labels = torch.cat(all_labels)
    return results
