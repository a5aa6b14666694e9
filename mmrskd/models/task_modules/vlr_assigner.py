from typing import List, Optional, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes
from torch import Tensor

from mmrskd.models.task_modules.atss_candidates import (ATSSCandidates,
                                                       best_per_prior)
from mmrskd.registry import TASK_UTILS
from mmrskd.structures import aligned_hbox_rbox_iou, to_box_type
from mmrskd.utils import MMRSKDError

EPS = 1e-7
# pairs this close below the region are computed too: mmcv's float32
# kernel can return an IoU a few 1e-7 above a bound that is exact in reals
BOUND_SLACK = 1e-5
# the exact float64 IoUs are within about 5e-7 of mmcv's float32 kernel:
# where one is this close to a bound of the region, or to another GT's IoU
# of the same prior, the kernel's value decides, as it did for every pair
KERNEL_MARGIN = 1e-4


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
    prior in the VLR of several GTs takes the one of highest IoU (the lowest
    GT index on ties).

    Ground truths may be horizontal ``(k, 4)``, rotated ``(k, 5)`` or
    quadrilateral ``(k, 8)`` (converted to their minimum rotated
    rectangles). The DIoU penalty of rotated boxes uses the axis-aligned box
    enclosing the prior and the GT's axis-aligned hull, which is the usual
    DIoU for horizontal boxes.

    Only the pairs whose region membership can depend on their IoU are
    computed (see :meth:`pairs`). Rotated IoUs are those of mmcv's kernel
    (mmrotate's ``RBboxOverlaps2D``) on every pair, without computing most
    of them with it (about 1 µs a pair on the CPU): the candidates take the
    kernel (their IoUs set the threshold), a pair whose score bound cannot
    reach the region none, the others the exact float64 IoU
    (:func:`~mmrskd.structures.aligned_hbox_rbox_iou`), and the kernel again
    where that IoU is within ``KERNEL_MARGIN`` of deciding the region or the
    GT. The region and the GT are those of the kernel on every pair; an
    assigned IoU (``max_overlaps``) may differ from the kernel's by its
    float32 rounding (about 5e-7).

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
               gt_instances_ignore: Optional[InstanceData] = None,
               candidates: Optional[ATSSCandidates] = None
               ) -> AssignResult:
        """Mark the VLR priors of one image.

        Args:
            pred_instances (InstanceData): ``priors``, horizontal ``(P, 4)``
                xyxy boxes (a tensor or ``HorizontalBoxes``) of all levels.
            num_level_priors (list[int]): priors per level, in order.
            gt_instances (InstanceData): ``bboxes`` and ``labels``.
            gt_instances_ignore (InstanceData, optional): unused.
            candidates (ATSSCandidates, optional): the ATSS search of these
                priors and GT, when another assigner shares it.

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
        if candidates is None:
            candidates = ATSSCandidates(HorizontalBoxes(priors), gt_boxes,
                                        num_level_priors)

        best_iou, best_gt = self._best_gt(
            *self._region(priors, gt_boxes, candidates), num_priors,
            candidates)
        assigned = best_iou >= 0
        gt_inds[assigned] = best_gt[assigned] + 1
        vlr_overlaps[assigned] = best_iou[assigned]
        labels[assigned] = gt_labels[best_gt[assigned]]
        return AssignResult(num_gt, gt_inds, vlr_overlaps, labels=labels)

    def _region(self, priors: Tensor, gt_boxes: BaseBoxes,
                candidates: ATSSCandidates
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The VLR's prior-GT pairs ``rows``, ``cols`` ``(n, )``, their IoUs
        ``(n, )`` (float64) and whether each IoU is the kernel's (a float32
        value, else the exact one)."""
        candidate_idxs, candidate_ious = candidates.candidates(self.topk)
        thresholds = self.thresholds(_cleaned(candidate_ious))
        lowers = self.lower_ratio * thresholds
        gt_hulls = gt_boxes.convert_to('hbox').tensor
        gt_areas = gt_boxes.areas
        num_gt = len(gt_boxes)
        # a pair's id is prior * k + gt
        candidate_ids = (candidate_idxs * num_gt + torch.arange(
            num_gt, device=priors.device)).flatten()
        pair_ids = self.pairs(priors, gt_hulls, gt_areas, candidate_ids,
                              lowers)
        rows, cols = pair_ids // num_gt, pair_ids % num_gt
        pair_priors, pair_hulls = priors[rows], gt_hulls[cols]
        penalties = self.penalties(pair_priors, pair_hulls,
                                   candidates.distances.view(-1)[pair_ids])
        kernel = torch.ones_like(rows, dtype=torch.bool)
        if not candidates.rotated:
            ious = _cleaned(candidates.pair_ious(rows, cols)).double()
        else:
            # the candidates' kernel IoUs, at their place among the pairs
            at = torch.searchsorted(pair_ids, candidate_ids)
            ious = priors.new_zeros(len(rows), dtype=torch.float64)
            ious[at] = _cleaned(candidate_ious).flatten().double()
            bounds = self._iou_upper_bound(pair_priors, pair_hulls,
                                           gt_areas[cols])
            # the others stay outside the region with an IoU of 0
            exact = bounds - penalties >= lowers[cols] - BOUND_SLACK
            exact[at] = False
            ious[exact] = aligned_hbox_rbox_iou(
                pair_priors[exact], gt_boxes.tensor[cols[exact]]).clamp(0, 1)
            kernel &= ~exact
        lowers, thresholds = lowers[cols].double(), thresholds[cols].double()
        scores = ious - penalties.double()
        unsure = ~kernel & (torch.minimum(
            (scores - lowers).abs(), (scores - thresholds).abs()) <
                            KERNEL_MARGIN)
        if unsure.any():
            ious[unsure] = _cleaned(candidates.pair_ious(
                rows[unsure], cols[unsure])).double()
            kernel |= unsure
        # a kernel IoU's score in float32, as when every pair took it
        scores = torch.where(kernel, (ious.float() - penalties).double(),
                             scores)
        in_vlr = (scores >= lowers) & (scores < thresholds)
        return rows[in_vlr], cols[in_vlr], ious[in_vlr], kernel[in_vlr]

    @staticmethod
    def _best_gt(rows: Tensor, cols: Tensor, ious: Tensor, kernel: Tensor,
                 num_priors: int, candidates: ATSSCandidates
                 ) -> Tuple[Tensor, Tensor]:
        """The highest IoU ``(P, )`` of each prior among its VLR pairs
        (float32, -1 where it has none) and its GT ``(P, )``, the lowest
        index on ties. Exact IoUs within ``KERNEL_MARGIN`` of the prior's
        best take the kernel's value first, so the GT is the kernel's."""
        best = ious.new_full((num_priors, ), -1.0).scatter_reduce(
            0, rows, ious, 'amax')
        near = ious >= best[rows] - KERNEL_MARGIN
        contested = near & (torch.bincount(
            rows[near], minlength=num_priors)[rows] > 1)
        recompute = contested & ~kernel
        if recompute.any():
            ious = ious.clone()
            ious[recompute] = _cleaned(candidates.pair_ious(
                rows[recompute], cols[recompute])).double()
        best, best_gt = best_per_prior(rows, cols, ious, num_priors, -1.0)
        return best.float(), best_gt

    def pairs(self, priors: Tensor, gt_hulls: Tensor, gt_areas: Tensor,
              candidate_ids: Tensor, lowers: Tensor) -> Tensor:
        """The prior-GT pairs whose region membership can depend on their
        IoU, as ascending ids ``(n, )``: the candidates (``candidate_ids``
        ``(L * topk * k, )``), every pair of a GT whose region's lower bound
        (``lowers`` ``(k, )``) is within ``BOUND_SLACK`` of 0 (LD's
        ``lower_ratio`` 0, or a degenerate GT), and the pairs whose IoU can
        reach that bound: their axis-aligned hulls (``gt_hulls`` ``(k, 4)``)
        overlap and their area ratio (the GT's ``gt_areas`` ``(k, )``), an
        upper bound of the IoU, reaches it. Any other pair has a score below
        its GT's region."""
        # min(areas) >= ratio * max(areas), as two tests of (P, k) bools
        ratios = lowers - BOUND_SLACK
        prior_areas = (priors[:, 2:] - priors[:, :2]).prod(-1)[:, None]
        possible = prior_areas * ratios <= gt_areas
        possible &= gt_areas * ratios <= prior_areas
        for axis in (0, 1):
            possible &= priors[:, None, axis] < gt_hulls[None, :, axis + 2]
            possible &= gt_hulls[None, :, axis] < priors[:, None, axis + 2]
        possible.view(-1)[candidate_ids] = True
        possible[:, lowers <= BOUND_SLACK] = True
        return possible.view(-1).nonzero()[:, 0]

    def penalties(self, priors: Tensor, gt_hulls: Tensor,
                  distances: Tensor) -> Tensor:
        """What the VLR score subtracts from the IoU of each pair ``(n, )``:
        DIoU's centre distance term, or 0 (``iou_mode='iou'``); ``priors``
        and the GT's axis-aligned hulls ``gt_hulls`` ``(n, 4)``, their
        centre ``distances`` ``(n, )``."""
        if self.iou_mode == 'iou':
            return distances.new_zeros(distances.shape)
        enclose_lt = torch.min(priors[:, :2], gt_hulls[:, :2])
        enclose_rb = torch.max(priors[:, 2:], gt_hulls[:, 2:])
        enclose_diag = ((enclose_rb - enclose_lt)**2).sum(-1).clamp_min(EPS)
        return distances**2 / enclose_diag

    @staticmethod
    def thresholds(candidate_ious: Tensor) -> Tensor:
        """ATSS's per-GT IoU threshold ``(k, )``: mean + std of the
        candidates' IoUs ``(L * topk, k)``."""
        # a single candidate has no spread: std 0, not NaN
        std = torch.nan_to_num(candidate_ious.std(0), nan=0.0)
        return candidate_ious.mean(0) + std

    @staticmethod
    def _iou_upper_bound(priors: Tensor, gt_hulls: Tensor,
                         gt_areas: Tensor) -> Tensor:
        """``(n, )`` upper bound of the rotated IoU of horizontal ``priors``
        ``(n, 4)`` with rotated GT of axis-aligned hulls ``gt_hulls``
        ``(n, 4)`` and areas ``gt_areas`` ``(n, )``: the intersection ``I``
        is at most ``U``, that of the hulls and the smaller area, and ``I /
        (A_1 + A_2 - I)`` grows with ``I``."""
        lt = torch.max(priors[:, :2], gt_hulls[:, :2])
        rb = torch.min(priors[:, 2:], gt_hulls[:, 2:])
        hull_inter = (rb - lt).clamp(min=0).prod(-1)
        prior_area = (priors[:, 2:] - priors[:, :2]).prod(-1)
        bound = torch.min(hull_inter, torch.min(prior_area, gt_areas))
        return bound / (prior_area + gt_areas - bound).clamp_min(EPS)


def _cleaned(ious: Tensor) -> Tensor:
    """IoUs in [0, 1]: degenerate boxes overlap nothing rather than NaN."""
    return torch.nan_to_num(ious, nan=0.0).clamp(0, 1)
