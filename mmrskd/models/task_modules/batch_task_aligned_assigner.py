"""Task-aligned assignment as YOLOv8 does it, for a whole padded batch.

mmdet's :class:`~mmdet.models.task_modules.TaskAlignedAssigner` (TOOD) works
image by image, takes the top-k candidates over *all* priors and only then
drops those whose point lies outside the box, so fewer than ``topk`` priors
can survive for small objects. YOLOv8 first restricts the candidates to
points inside the box and takes the top-k among them, and it trains the
classifier on soft targets (the alignment metric renormalised per object so
that its best prior gets the object's best IoU). Remote-sensing images are
full of small objects, so that difference matters; hence this assigner.
"""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class BatchTaskAlignedAssigner:
    """Assign points to padded batches of boxes by ``s**alpha * u**beta``.

    ``s`` is the predicted score of the object's class and ``u`` the IoU of
    the predicted box with it. For every object the ``topk`` points inside it
    with the largest metric become positive; a point positive for several
    objects keeps the one its box overlaps most.

    Args:
        num_classes (int): Number of classes.
        topk (int): Candidates per object. Defaults to 10.
        alpha (float): Score exponent. Defaults to 0.5.
        beta (float): IoU exponent. Defaults to 6.0.
        eps (float): Margin for "inside" and for the normalisation.
            Defaults to 1e-9.
        iou_calculator (dict): Pairwise IoU; defaults to mmdet's
            ``BboxOverlaps2D`` (plain IoU, batched).
    """

    def __init__(self,
                 num_classes: int,
                 topk: int = 10,
                 alpha: float = 0.5,
                 beta: float = 6.0,
                 eps: float = 1e-9,
                 iou_calculator: dict = dict(type='mmdet.BboxOverlaps2D')):
        if topk < 1:
            raise MMRSKDError(
                f'BatchTaskAlignedAssigner: topk must be >= 1, got {topk}')
        self.num_classes = num_classes
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    @torch.no_grad()
    def assign(self, pred_bboxes: Tensor, pred_scores: Tensor, points: Tensor,
               gt_labels: Tensor, gt_bboxes: Tensor,
               gt_valid: Tensor) -> Dict[str, Tensor]:
        """
        Args:
            pred_bboxes (Tensor): [B, N, 4] predicted boxes, x1y1x2y2.
            pred_scores (Tensor): [B, N, C] predicted probabilities.
            points (Tensor): [N, 2] prior points (x, y).
            gt_labels (Tensor): [B, M] class indices (any value where
                padded).
            gt_bboxes (Tensor): [B, M, 4] boxes, x1y1x2y2.
            gt_valid (Tensor): [B, M] bool, False for padding.

        Returns:
            dict[str, Tensor]:

            - ``labels``: [B, N] assigned class, ``num_classes`` for
              background.
            - ``bboxes``: [B, N, 4] assigned box (zeros for background).
            - ``scores``: [B, N, C] soft classification targets.
            - ``fg_mask``: [B, N] bool, positive points.
            - ``gt_inds``: [B, N] index of the assigned object (0 for
              background; check ``fg_mask``).
        """
        batch, num_points = pred_scores.shape[:2]
        num_gts = gt_bboxes.size(1)
        if num_gts == 0:
            return dict(
                labels=gt_labels.new_full((batch, num_points),
                                          self.num_classes),
                bboxes=pred_bboxes.new_zeros((batch, num_points, 4)),
                scores=pred_scores.new_zeros(
                    (batch, num_points, self.num_classes)),
                fg_mask=pred_scores.new_zeros((batch, num_points),
                                              dtype=torch.bool),
                gt_inds=gt_labels.new_zeros((batch, num_points)))

        # [B, M, N] masks and metrics
        xy = points[None, None]
        inside = torch.cat([xy - gt_bboxes[..., None, :2],
                            gt_bboxes[..., None, 2:] - xy],
                           dim=-1).amin(-1) > self.eps
        candidate = inside & gt_valid[..., None]
        overlaps = self.iou_calculator(gt_bboxes, pred_bboxes).clamp(min=0)
        overlaps = overlaps * candidate
        labels = gt_labels.clamp(0, self.num_classes - 1).long()
        class_scores = pred_scores.transpose(1, 2).gather(
            1, labels[..., None].expand(-1, -1, num_points))
        metrics = class_scores.pow(self.alpha) * overlaps.pow(self.beta)
        metrics = metrics * candidate

        topk = min(self.topk, num_points)
        topk_inds = metrics.topk(topk, dim=-1).indices
        is_topk = torch.zeros_like(candidate).scatter_(-1, topk_inds, True)
        positive = is_topk & candidate

        # a point positive for several objects keeps the best-overlapping one
        shared = positive.sum(1, keepdim=True) > 1
        best = overlaps.masked_fill(~positive, -1).argmax(1, keepdim=True)
        best_onehot = torch.zeros_like(positive).scatter_(1, best, True)
        positive = torch.where(shared, best_onehot & positive, positive)

        fg_mask = positive.any(1)
        gt_inds = positive.to(torch.uint8).argmax(1)
        assigned_labels = labels.gather(1, gt_inds)
        assigned_bboxes = gt_bboxes.gather(
            1, gt_inds[..., None].expand(-1, -1, 4))

        # soft targets: metric scaled so each object's best point scores the
        # object's best IoU
        metrics = metrics * positive
        max_metric = metrics.amax(-1, keepdim=True)
        max_overlap = (overlaps * positive).amax(-1, keepdim=True)
        soft = (metrics * max_overlap / (max_metric + self.eps)).amax(1)
        scores = F.one_hot(assigned_labels, self.num_classes).to(
            pred_scores.dtype) * (soft * fg_mask)[..., None]

        assigned_labels = assigned_labels.masked_fill(~fg_mask,
                                                      self.num_classes)
        assigned_bboxes = assigned_bboxes * fg_mask[..., None]
        return dict(
            labels=assigned_labels,
            bboxes=assigned_bboxes,
            scores=scores,
            fg_mask=fg_mask,
            gt_inds=gt_inds * fg_mask)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'topk={self.topk}, alpha={self.alpha}, beta={self.beta})')
