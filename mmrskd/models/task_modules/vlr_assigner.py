from typing import List, Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes, bbox_overlaps
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes
from torch import Tensor

from mmrskd.registry import TASK_UTILS
from mmrskd.structures import to_box_type
from mmrskd.utils import MMRSKDError

EPS = 1e-7
# pairs this close below the region are computed too: mmcv's float32
# kernel can return an IoU a few 1e-7 above a bound that is exact in reals
BOUND_SLACK = 1e-5
# ground truths assigned together (see VLRAssigner.assign)
GT_CHUNK = 8


@TASK_UTILS.register_module()
class VLRAssigner(BaseAssigner):
    r"""The valuable localisation region (VLR) of localisation distillation.

    `Localization Distillation for Dense Object Detection
    <https://arxiv.org/abs/2102.12252>`_ (Zheng et al., CVPR 2022), used by
    LTD's task-aware spatial disentangle distillation. For each ground truth
    :math:`g`, ATSS picks the ``topk`` priors per level whose centres are
    closest to :math:`g`'s centre and sets the threshold :math:`\theta_g =
    \mathrm{mean} + \mathrm{std}` of their IoUs with :math:`g`. The VLR of
    :math:`g` is every prior (of any level, no centre-inside condition) with

    .. math::
        \rho\, \theta_g \le s(p, g) < \theta_g,

    :math:`s` the DIoU (LD's choice) or the IoU, :math:`\rho` =
    ``lower_ratio``. ATSS positives need IoU :math:`\ge \theta_g`, so the VLR
    is the ring of priors just below the positives (a prior can be in both
    when its DIoU is below the threshold but its IoU is not, as in LD). A
    prior in the VLR of several GTs takes the one of highest IoU.

    Ground truths may be horizontal ``(k, 4)``, rotated ``(k, 5)`` or
    quadrilateral ``(k, 8)`` (converted to their minimum rotated
    rectangles). Rotated IoUs use mmrotate's ``RBboxOverlaps2D`` (mmcv's
    ``box_iou_rotated`` on the pairs that can overlap); the DIoU penalty of
    rotated boxes uses the axis-aligned box enclosing the prior and the
    GT's axis-aligned hull, which is the usual DIoU for horizontal boxes.

    Args:
        topk (int): candidates per level for the threshold. Defaults to 9.
        iou_mode (str): ``'diou'`` (LD) or ``'iou'``. Defaults to ``'diou'``.
        lower_ratio (float): :math:`\rho`. Defaults to 0.25 (LD).
    """

    IOU_MODES = ('diou', 'iou')

    def __init__(self, topk: int = 9, iou_mode: str = 'diou',
                 lower_ratio: float = 0.25):
        name = type(self).__name__
        if iou_mode not in self.IOU_MODES:
            raise MMRSKDError(f'{name}: iou_mode={iou_mode!r} is not '
                              f'supported; use one of {list(self.IOU_MODES)}')
        if not (isinstance(topk, int) and topk > 0):
            raise MMRSKDError(f'{name}: topk={topk!r} must be a positive int')
        if not 0 <= lower_ratio < 1:
            raise MMRSKDError(f'{name}: lower_ratio={lower_ratio!r} must be '
                              'in [0, 1)')
        self.topk = topk
        self.iou_mode = iou_mode
        self.lower_ratio = lower_ratio

    def assign(self,
               pred_instances: InstanceData,
               num_level_priors: List[int],
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None
               ) -> AssignResult:
        """Mark the VLR priors of one image.

        Args:
            pred_instances (InstanceData): ``priors``, horizontal ``(P, 4)``
                xyxy boxes (a tensor or ``HorizontalBoxes``) of all levels.
            num_level_priors (list[int]): priors per level, in order.
            gt_instances (InstanceData): ``bboxes`` and ``labels``.
            gt_instances_ignore (InstanceData, optional): unused.

        Returns:
            AssignResult: ``gt_inds`` is the 1-based GT of each VLR prior
            and 0 elsewhere, ``max_overlaps`` its IoU with that GT (0
            elsewhere), ``labels`` the GT label (-1 elsewhere).
        """
        priors = pred_instances.priors
        if isinstance(priors, BaseBoxes):
            priors = priors.tensor
        priors = priors[:, :4].float()
        if sum(num_level_priors) != priors.shape[0]:
            raise MMRSKDError(
                f'{type(self).__name__}: num_level_priors sums to '
                f'{sum(num_level_priors)} but there are {priors.shape[0]} '
                'priors')
        gt_boxes = to_box_type(gt_instances.bboxes)
        if isinstance(gt_boxes, QuadriBoxes):
            gt_boxes = gt_boxes.convert_to('rbox')
        gt_labels = gt_instances.labels
        num_gt, num_priors = len(gt_boxes), priors.shape[0]
        gt_inds = priors.new_zeros((num_priors, ), dtype=torch.long)
        vlr_overlaps = priors.new_zeros((num_priors, ))
        labels = priors.new_full((num_priors, ), -1, dtype=torch.long)
        if num_gt == 0 or num_priors == 0:
            return AssignResult(num_gt, gt_inds, vlr_overlaps, labels=labels)

        # GT by chunks: the (P, chunk) matrices of one chunk at a time
        # instead of about ten (P, k) ones (14 MB for a dense 256-px scene
        # on 12k anchors); a GT's region depends on its column only
        best_iou = priors.new_full((num_priors, ), -1.0)
        best_gt = gt_inds.clone()
        for start in range(0, num_gt, GT_CHUNK):
            chunk_iou, chunk_gt = self._region_ious(
                priors, gt_boxes[start:start + GT_CHUNK],
                num_level_priors).max(dim=1)
            # ties: the lower GT index, as one max over all columns
            better = chunk_iou > best_iou
            best_iou = torch.where(better, chunk_iou, best_iou)
            best_gt = torch.where(better, chunk_gt + start, best_gt)
        assigned = best_iou >= 0
        gt_inds[assigned] = best_gt[assigned] + 1
        vlr_overlaps[assigned] = best_iou[assigned]
        labels[assigned] = gt_labels[best_gt[assigned]]
        return AssignResult(num_gt, gt_inds, vlr_overlaps, labels=labels)

    def _region_ious(self, priors: Tensor, gt_boxes: BaseBoxes,
                     num_level_priors: List[int]) -> Tensor:
        """``(P, k)`` IoU of the pairs in the VLR, -1 elsewhere."""
        distances = self._centre_distances(priors, gt_boxes)
        candidates = self.candidates(distances, num_level_priors)
        penalties = self.penalties(priors, gt_boxes, distances)
        ious = self.ious(priors, gt_boxes, candidates, penalties)
        thresholds = self.thresholds(ious, candidates)
        scores = ious - penalties
        in_vlr = (scores >= self.lower_ratio * thresholds) & (
            scores < thresholds)
        return torch.where(in_vlr, ious, ious.new_tensor(-1.0))

    def candidates(self, distances: Tensor,
                   num_level_priors: List[int]) -> Tensor:
        """ATSS's candidates: indices ``(L * topk, k)`` of the ``topk``
        centre-closest priors of every level, for every GT, from the
        prior-GT centre ``distances`` ``(P, k)``."""
        candidates = []
        start = 0
        for count in num_level_priors:
            if count > 0:
                _, idxs = distances[start:start + count].topk(
                    min(self.topk, count), dim=0, largest=False)
                candidates.append(idxs + start)
            start += count
        return torch.cat(candidates, dim=0)

    def ious(self, priors: Tensor, gt_boxes: BaseBoxes,
             candidates: Tensor, penalties: Tensor) -> Tensor:
        """IoU ``(P, k)`` of the priors with the GT, exact wherever the
        region can depend on it.

        Rotated IoUs (mmcv's kernel, about 1 µs a pair on the CPU) are
        computed only for the candidates and for the pairs whose score
        bound, an IoU upper bound (:meth:`_iou_upper_bound`) minus the
        pair's ``penalties`` (``(P, k)``, :meth:`penalties`), reaches
        ``lower_ratio`` times the GT's threshold: any other pair has a
        score below the region and stays outside it with an IoU of 0 as
        well. The region is unchanged.
        """
        if not isinstance(gt_boxes, RotatedBoxes):
            ious = bbox_overlaps(priors, gt_boxes.tensor)
            # degenerate boxes: no overlap rather than NaN
            return torch.nan_to_num(ious, nan=0.0).clamp(0, 1)
        rotated_priors = HorizontalBoxes(priors).convert_to('rbox').tensor
        gt_tensor = gt_boxes.tensor

        def aligned_ious(rows, cols):
            ious = RBboxOverlaps2D()(rotated_priors[rows], gt_tensor[cols],
                                     is_aligned=True)
            return torch.nan_to_num(ious, nan=0.0).clamp(0, 1)

        gt_index = torch.arange(len(gt_tensor), device=priors.device)
        gt_index = gt_index.expand_as(candidates)
        candidate_ious = aligned_ious(candidates.flatten(),
                                      gt_index.flatten()).view_as(candidates)
        threshold = self.thresholds(candidate_ious, None)
        # the slack keeps pairs whose kernel IoU may round above the bound
        needed = self._iou_upper_bound(priors, gt_boxes) - penalties >= (
            self.lower_ratio * threshold - BOUND_SLACK)
        needed[candidates, gt_index] = True
        rows, cols = needed.nonzero(as_tuple=True)
        ious = priors.new_zeros(needed.shape)
        ious[rows, cols] = aligned_ious(rows, cols).to(ious.dtype)
        return ious

    def penalties(self, priors: Tensor, gt_boxes: BaseBoxes,
                  distances: Tensor) -> Tensor:
        """What the VLR score subtracts from the IoU, ``(P, k)``: DIoU's
        centre distance term, or 0 (``iou_mode='iou'``); ``distances``
        ``(P, k)`` are those of the centres."""
        if self.iou_mode == 'iou':
            return priors.new_zeros((len(priors), len(gt_boxes)))
        gt_hulls = gt_boxes.convert_to('hbox').tensor if isinstance(
            gt_boxes, RotatedBoxes) else gt_boxes.tensor
        enclose_lt = torch.min(priors[:, None, :2], gt_hulls[None, :, :2])
        enclose_rb = torch.max(priors[:, None, 2:], gt_hulls[None, :, 2:])
        enclose_diag = ((enclose_rb - enclose_lt)**2).sum(-1).clamp_min(EPS)
        return distances**2 / enclose_diag

    @staticmethod
    def thresholds(ious: Tensor, candidates: Optional[Tensor]) -> Tensor:
        """ATSS's per-GT IoU threshold, ``(1, k)``: mean + std of the IoUs
        of the candidates (``ious`` of all priors with their indices, or
        already gathered when ``candidates`` is None)."""
        if candidates is not None:
            ious = ious.gather(0, candidates)
        # a single candidate has no spread: std 0, not NaN
        std = torch.nan_to_num(ious.std(0), nan=0.0)
        return (ious.mean(0) + std)[None]

    @staticmethod
    def _iou_upper_bound(priors: Tensor, gt_boxes: RotatedBoxes) -> Tensor:
        """``(P, k)`` upper bound of the rotated IoU of horizontal
        ``priors`` with rotated GT: the intersection ``I`` is at most
        ``U``, that of the axis-aligned hulls and the smaller area, and
        ``I / (A_1 + A_2 - I)`` grows with ``I``."""
        hulls = gt_boxes.convert_to('hbox').tensor
        lt = torch.max(priors[:, None, :2], hulls[None, :, :2])
        rb = torch.min(priors[:, None, 2:], hulls[None, :, 2:])
        hull_inter = (rb - lt).clamp(min=0).prod(-1)
        prior_area = (priors[:, 2:] - priors[:, :2]).prod(-1)[:, None]
        gt_area = gt_boxes.areas[None]
        bound = torch.min(hull_inter, torch.min(prior_area, gt_area))
        return bound / (prior_area + gt_area - bound).clamp_min(EPS)

    @staticmethod
    def _centre_distances(priors: Tensor, gt_boxes: BaseBoxes) -> Tensor:
        # computed as mmdet's ATSS does, so ties break the same way
        prior_centres = (priors[:, :2] + priors[:, 2:]) / 2
        return (prior_centres[:, None, :] -
                gt_boxes.centers.float()[None, :, :]).pow(2).sum(-1).sqrt()
