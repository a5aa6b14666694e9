"""Rasterise ground-truth boxes (horizontal, rotated, quadrilateral) onto a
feature grid, for GT-aware distillation (FGD's foreground/background split,
foreground priors, per-object heat maps)."""
from typing import Dict, Sequence, Tuple, Union

import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import InstanceData
from torch import BoolTensor, Tensor

from mmrskd.structures import to_box_type
from mmrskd.utils import MMRSKDError

Stride = Union[float, Tuple[float, float]]


def featmap_stride(batch_img_metas: Sequence[Dict],
                   featmap_size: Tuple[int, int]) -> Tuple[float, float]:
    """Stride of a feature map of the padded batch.

    Args:
        batch_img_metas (Sequence[dict]): image metas with
            ``batch_input_shape`` ``(H_in, W_in)``, as set by mmdet's
            ``DetDataPreprocessor``.
        featmap_size (tuple[int, int]): ``(H, W)`` of the feature map.

    Returns:
        tuple[float, float]: ``(stride_w, stride_h)``, mmdet's order.
    """
    if not batch_img_metas or 'batch_input_shape' not in batch_img_metas[0]:
        raise MMRSKDError(
            "batch_img_metas lacks batch_input_shape (set by mmdet's "
            "DetDataPreprocessor); map batch_img_metas='img_metas' in "
            'loss_mappings')
    input_h, input_w = batch_img_metas[0]['batch_input_shape'][:2]
    feat_h, feat_w = featmap_size
    return input_w / feat_w, input_h / feat_h


def boxes_to_cell_masks(boxes: Union[Tensor, BaseBoxes],
                        featmap_size: Tuple[int, int],
                        stride: Stride,
                        min_one_cell: bool = True) -> BoolTensor:
    """Mark the feature cells whose centre lies inside each box.

    Cell ``(i, j)`` has its centre at ``((j + 0.5) * stride_w, (i + 0.5) *
    stride_h)`` in input pixels. The inside tests are the box types' own
    ``find_inside_points``: inclusive for horizontal boxes, exact up to a
    0.01 px margin for rotated boxes and a half-plane test for (convex)
    quadrilaterals. None of them needs CUDA.

    Args:
        boxes (Tensor | BaseBoxes): ``k`` boxes, see
            :func:`~mmrskd.structures.to_box_type`.
        featmap_size (tuple[int, int]): ``(H, W)``.
        stride (float | tuple[float, float]): cell size in input pixels,
            ``(stride_w, stride_h)`` or one number for both.
        min_one_cell (bool): a box that contains no cell centre (smaller
            than a cell, or degenerate) marks the cell holding its own
            centre, if that lies on the grid, so small objects are not lost
            on coarse levels. Defaults to True.

    Returns:
        BoolTensor: ``(k, H, W)``, on the boxes' device.
    """
    boxes = to_box_type(boxes)
    feat_h, feat_w = featmap_size
    device = boxes.device
    if len(boxes) == 0:
        return torch.zeros((0, feat_h, feat_w), dtype=torch.bool,
                           device=device)
    point_generator = MlvlPointGenerator([stride], offset=0.5)
    cell_centers = point_generator.single_level_grid_priors(
        (feat_h, feat_w), level_idx=0, device=device)
    # (H*W, k) -> (k, H, W); row-major points match the (H, W) layout
    masks = boxes.find_inside_points(cell_centers).t().reshape(
        -1, feat_h, feat_w)
    if min_one_cell:
        stride_w, stride_h = point_generator.strides[0]
        center_col = torch.floor(boxes.centers[:, 0] / stride_w).long()
        center_row = torch.floor(boxes.centers[:, 1] / stride_h).long()
        missed = ~masks.flatten(1).any(1) & (center_col >= 0) & (
            center_col < feat_w) & (center_row >= 0) & (center_row < feat_h)
        missed_idx = missed.nonzero().squeeze(1)
        masks[missed_idx, center_row[missed_idx],
              center_col[missed_idx]] = True
    return masks


def rasterize_gt_boxes(batch_gt_instances: Sequence[InstanceData],
                       featmap_size: Tuple[int, int],
                       stride: Stride,
                       area_normalize: bool = False,
                       min_one_cell: bool = True) -> Tensor:
    """Foreground masks of a batch on a feature grid.

    Args:
        batch_gt_instances (Sequence[InstanceData]): per image, ``bboxes``
            as a ``(k, 4)`` xyxy / ``(k, 5)`` rbox / ``(k, 8)`` qbox tensor
            or an mmdet/mmrotate box type, in input pixels.
        featmap_size (tuple[int, int]): ``(H, W)``.
        stride (float | tuple[float, float]): cell size in input pixels,
            ``(stride_w, stride_h)``; see :func:`featmap_stride`.
        area_normalize (bool): instead of 1, give each cell of a box the
            value ``1 / (number of cells of the box)`` and keep the largest
            value where boxes overlap, so every object carries about the same
            total weight whatever its size (FGD's scale mask, Yang et al.,
            CVPR 2022). Defaults to False.
        min_one_cell (bool): see :func:`boxes_to_cell_masks`. Defaults to
            True.

    Returns:
        Tensor: ``(N, 1, H, W)`` fp32 masks, zero where no box lies.
    """
    masks = []
    for img_idx, gt_instances in enumerate(batch_gt_instances):
        if 'bboxes' not in gt_instances:
            raise MMRSKDError(
                f'batch_gt_instances[{img_idx}] has no bboxes; map '
                "batch_gt_instances='gt_instances' in loss_mappings")
        box_masks = boxes_to_cell_masks(gt_instances.bboxes, featmap_size,
                                        stride, min_one_cell).float()
        if area_normalize:
            box_masks = box_masks / box_masks.flatten(1).sum(1).clamp_min(
                1)[:, None, None]
        if len(box_masks) == 0:
            masks.append(box_masks.new_zeros(featmap_size))
        else:
            masks.append(box_masks.max(0).values)
    return torch.stack(masks)[:, None]
