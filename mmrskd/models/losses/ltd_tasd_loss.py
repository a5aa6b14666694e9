import json
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.structures.bbox import HorizontalBoxes, get_box_tensor
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.assigners import RotatedATSSAssigner
from mmrotate.models.task_modules.assigners.rotated_atss_assigner import \
    bbox_center_distance
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes
from torch import Tensor, nn

from mmrskd.models.losses.utils import (check_choice, check_positive,
                                        pair_levels)
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.structures import to_box_type
from mmrskd.utils import MMRSKDError


class _StepRegionCache:
    """The regions of the current step, shared by the LTDTASDLoss instances.

    Why: a config has up to four TASD terms (``task`` x ``region``), and
    the terms of the same region (``loss_ld`` and ``loss_kd`` on the
    positives, ``loss_ld_vlr`` and ``loss_kd_vlr`` on the VLR) would each
    redo the same prior generation and ATSS / VLR assignment on the same GT
    in the same step; the second one now reuses the first one's masks.

    Why it cannot serve stale regions: an entry is only returned for the
    same region settings (``spec``: class, region, topk, prior generator
    and VLR assigner configs) and the same ``batch_gt_instances`` list
    object, which the distiller builds anew every step, so every step
    starts with a miss (the entry holds the list, so its id cannot be
    reused by a later step's list); and the feature sizes, device, pad
    shapes and GT boxes and labels must equal those recorded with the
    entry (copies, so GT changed in place misses too). The regions depend
    on nothing else, so a hit is what recomputing would give. One entry per
    ``spec``: the next step replaces it.
    """

    def __init__(self):
        self.entries = {}

    @staticmethod
    def snapshot(batch_gt_instances, batch_img_metas, featmap_sizes,
                 device) -> tuple:
        """What the regions depend on besides the settings."""
        gts = tuple((type(gt.bboxes).__name__,
                     get_box_tensor(gt.bboxes).detach().clone(),
                     gt.labels.detach().clone())
                    for gt in batch_gt_instances)
        pads = None if batch_img_metas is None else tuple(
            tuple(meta['pad_shape'][:2]) for meta in batch_img_metas)
        return tuple(map(tuple, featmap_sizes)), str(device), pads, gts

    @staticmethod
    def _equal(a: Tensor, b: Tensor) -> bool:
        return a.dtype == b.dtype and a.shape == b.shape and \
            torch.equal(a, b)

    def get(self, spec, batch_gt_instances, snapshot) -> Optional[tuple]:
        """The cached ``(masks, num_level_priors)``, or None."""
        entry = self.entries.get(spec)
        if entry is None or entry[0] is not batch_gt_instances:
            return None
        (*old, old_gts), (*new, new_gts) = entry[1], snapshot
        if old != new or len(old_gts) != len(new_gts):
            return None
        for old_gt, new_gt in zip(old_gts, new_gts):  # (type, boxes, labels)
            if old_gt[0] != new_gt[0] or not all(
                    self._equal(a, b) for a, b in zip(old_gt[1:], new_gt[1:])):
                return None
        return entry[2]

    def put(self, spec, batch_gt_instances, snapshot, value: tuple):
        self.entries[spec] = (batch_gt_instances, snapshot, value)

    def clear(self):
        self.entries.clear()


class _CandidateRotatedATSSAssigner(RotatedATSSAssigner):
    """mmrotate's ``RotatedATSSAssigner`` that computes the rotated IoUs its
    ``gt_inds`` depend on and no others.

    ``RotatedATSSAssigner.assign`` reads the prior–GT IoU matrix only at its
    candidates (per level and GT the ``topk`` priors of closest centre):
    for their mean + std threshold and for the positives, every other entry
    being replaced by -INF before the argmax. mmcv's CPU rotated IoU costs
    about 1 µs a pair and an image has ``P x k`` pairs (98k for the 9-anchor
    RetinaNet at 256 px, most of TASD's step time), against ``5 * topk * k``
    candidates. So the IoUs are computed for the pairs at most as far as
    the ``topk``-th closest prior of their level (mmrotate's own distance
    function on the same boxes, so the same values; ties included, so a
    superset of the assigner's choice) and left 0 elsewhere: ``gt_inds`` and
    the labels are unchanged; ``max_overlaps`` of the negatives (-INF)
    too, and LTDTASDLoss reads only ``gt_inds``.
    """

    def __init__(self, topk: int):
        super().__init__(
            topk, iou_calculator=dict(type='mmrotate.RBboxOverlaps2D'))
        self.full_overlaps = self.iou_calculator
        self.num_level_priors = None

    def assign(self, pred_instances: InstanceData,
               num_level_priors: List[int], gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None):
        self.iou_calculator = self.candidate_overlaps
        self.num_level_priors = num_level_priors
        try:
            return super().assign(pred_instances, num_level_priors,
                                  gt_instances, gt_instances_ignore)
        finally:
            self.iou_calculator = self.full_overlaps
            self.num_level_priors = None

    def candidate_overlaps(self, priors, gt_bboxes, mode: str = 'iou',
                           is_aligned: bool = False) -> Tensor:
        """IoUs ``(P, k)`` of the candidate pairs, 0 elsewhere."""
        if mode != 'iou' or is_aligned or not len(priors) or \
                not len(gt_bboxes):
            return self.full_overlaps(priors, gt_bboxes, mode, is_aligned)
        distances = bbox_center_distance(gt_bboxes, priors)
        candidates = torch.zeros_like(distances, dtype=torch.bool)
        start = 0
        for count in self.num_level_priors:
            if count:
                level = distances[start:start + count]
                kth = level.topk(
                    min(self.topk, count), dim=0, largest=False)[0][-1]
                candidates[start:start + count] = level <= kth
            start += count
        rows, cols = candidates.nonzero(as_tuple=True)
        overlaps = distances.new_zeros(distances.shape)
        overlaps[rows, cols] = self.full_overlaps(
            priors[rows], gt_bboxes[cols], is_aligned=True).to(
                overlaps.dtype)
        return overlaps


@MODELS.register_module()
class LTDTASDLoss(nn.Module):
    r"""One term of LTD's task-aware spatial disentangle distillation (TASD).

    `Bridging the Gap Between Cumbersome and Light Detectors via
    Layer-Calibration and Task-Disentangle Distillation in Remote Sensing
    Imagery <https://doi.org/10.1109/TGRS.2023.3241342>`_ (TGRS 2023),
    ``TASDHead`` of the authors' code. Classification and localisation
    knowledge are distilled separately, each on its own region of the
    priors. The four terms of the paper are four instances of this loss:

    ==============  ========  ==========  ====  =========================
    term            ``task``  ``region``  T     weight (released config)
    ==============  ========  ==========  ====  =========================
    ``loss_ld``     reg       pos         10    0.025, teacher-softmax
    ``loss_ld_vlr`` reg       vlr         10    0.025, teacher-softmax
    ``loss_kd``     cls       pos         2     0.5
    ``loss_kd_vlr`` cls       vlr         2     0.5
    ==============  ========  ==========  ====  =========================

    * ``task='reg'``: KL divergence (:class:`LDLoss`, mean over bins,
      :math:`\times T^2`) between the student's and the teacher's box-side
      distributions (GFL/DFL ``bbox_pred``, ``4 * (reg_max + 1)`` logits per
      prior); ``task='cls'``: KL divergence (:class:`LogitKDLoss`, softmax
      over the classes, mean, :math:`\times T^2`) of the class logits.
    * ``region``: ``'pos'`` the ATSS positives (mmdet's ``ATSSAssigner``,
      mmrotate's ``RotatedATSSAssigner`` for rotated GT); ``'vlr'`` the
      valuable localisation region (:class:`VLRAssigner`); and two
      classification regions for the task-specific variant the code does
      not contain: ``'gt_center'`` (prior centre inside a GT box) and
      ``'teacher_score'`` (the teacher's highest class probability above
      ``score_ratio`` times its maximum over the image; ``task='cls'``
      only). The released code distils the classification on the VLR too.
    * Per level, the selected rows (all images) are summed, optionally
      weighted by :math:`K\, \mathrm{softmax}_i(u_i / t_w)` over the
      level's :math:`K` rows with :math:`u` the teacher's logits summed over
      the bins (``reg``) or their maximum over the classes (``cls``), and
      divided by ``avg_factor``; levels are summed.

    Regions are computed on priors of ``prior_generator`` (by default the
    GFL/ATSS anchors, ``8 * stride`` squares), so the loss works with any
    dense head with that many priors per position, anchor-free heads
    included; with ``batch_img_metas`` the priors outside each image's
    padded area are excluded, so ``'pos'`` is exactly an mmdet anchor head's
    ATSS assignment. Ground truths may be horizontal, rotated or
    quadrilateral.

    Args:
        task (str): ``'reg'`` or ``'cls'``. Defaults to ``'reg'``.
        region (str): ``'pos'``, ``'vlr'``, ``'gt_center'`` or
            ``'teacher_score'``. Defaults to ``'pos'``.
        T (float): temperature. Defaults to 10 (LTD's ``reg`` terms; its
            ``cls`` terms use 2).
        reg_max (int): largest bin of the box distributions. Defaults to 16.
        prior_generator (dict): priors for the region assignment, one set
            per head level.
        topk (int): ATSS candidates per level (``'pos'``). Defaults to 9.
        vlr_assigner (dict): the ``'vlr'`` assigner. Defaults to
            ``VLRAssigner(topk=9, iou_mode='diou', lower_ratio=0.25)``.
        weight_temperature (float | None): :math:`t_w` of the teacher-softmax
            row weights; None weights every row 1. LTD uses 5 for ``reg``
            and none for ``cls``. Defaults to None.
        score_ratio (float): threshold ratio of ``'teacher_score'``.
            Defaults to 0.5.
        avg_factor (float): divisor of each level's sum. Defaults to 16
            (the authors' code).
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    TASKS = ('reg', 'cls')
    REGIONS = ('pos', 'vlr', 'gt_center', 'teacher_score')
    # shared by all instances: the regions of the current step
    region_cache = _StepRegionCache()

    def __init__(self,
                 task: str = 'reg',
                 region: str = 'pos',
                 T: float = 10.0,
                 reg_max: int = 16,
                 prior_generator: dict = dict(
                     type='mmdet.AnchorGenerator',
                     ratios=[1.0],
                     octave_base_scale=8,
                     scales_per_octave=1,
                     strides=[8, 16, 32, 64, 128]),
                 topk: int = 9,
                 vlr_assigner: dict = dict(
                     type='VLRAssigner', topk=9, iou_mode='diou',
                     lower_ratio=0.25),
                 weight_temperature: Optional[float] = None,
                 score_ratio: float = 0.5,
                 avg_factor: float = 16.0,
                 loss_weight: float = 1.0):
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'task', task, self.TASKS)
        check_choice(name, 'region', region, self.REGIONS)
        if region == 'teacher_score' and task != 'cls':
            raise MMRSKDError(f"{name}: region='teacher_score' reads the "
                              "teacher's class logits; use it with "
                              "task='cls'")
        check_positive(name, 'avg_factor', avg_factor)
        if weight_temperature is not None:
            check_positive(name, 'weight_temperature', weight_temperature)
        self.task = task
        self.region = region
        self.reg_max = reg_max
        self.weight_temperature = weight_temperature
        self.score_ratio = score_ratio
        self.avg_factor = float(avg_factor)
        self.loss_weight = loss_weight
        self.prior_generator = TASK_UTILS.build(prior_generator)
        self._last_priors = None  # see _priors
        # what the regions depend on besides the batch (see _StepRegionCache)
        self._region_spec = (type(self), region, topk,
                             json.dumps([prior_generator, vlr_assigner],
                                        sort_keys=True, default=repr))
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.hbox_assigner = ATSSAssigner(topk)
        self.rbox_assigner = _CandidateRotatedATSSAssigner(topk)
        self.vlr_assigner = TASK_UTILS.build(vlr_assigner)
        if task == 'reg':
            self.divergence = MODELS.build(
                dict(type='LDLoss', T=T, reg_max=reg_max,
                     class_reduction='mean'))
        else:
            self.divergence = MODELS.build(
                dict(type='LogitKDLoss', mode='softmax', T=T,
                     class_reduction='mean'))

    def forward(self,
                logits_S: Sequence[Tensor],
                logits_T: Sequence[Tensor],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Optional[Sequence[Dict]] = None) -> Tensor:
        """Compute the loss.

        Args:
            logits_S (Sequence[Tensor]): student head outputs per level,
                ``(N, A * D, H, W)``: class logits (``D`` classes) or box
                distributions (``D = 4 * (reg_max + 1)``), ``A`` priors per
                position.
            logits_T (Sequence[Tensor]): the teacher's, same shapes.
            batch_gt_instances (Sequence[InstanceData]): per image,
                ``bboxes`` (input pixels) and ``labels``.
            batch_img_metas (Sequence[dict], optional): image metas with
                ``pad_shape``; priors outside an image's padded area are
                left out of its regions, as mmdet's anchor heads do with
                their ``valid_flags``. Without them every prior is valid.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        levels_S, levels_T = pair_levels(type(self).__name__, logits_S,
                                         logits_T)
        rows_S = [self._to_rows(level) for level in levels_S]
        rows_T, regions = self._level_regions(levels_T, batch_gt_instances,
                                              batch_img_metas)
        # every level's sum is divided by the same avg_factor, so the sum
        # over levels is one divergence over the rows of all levels; only
        # the row weights are per level (a softmax over the level's rows)
        selected_S = torch.cat(
            [level[region] for level, region in zip(rows_S, regions)])
        selected_T = torch.cat(
            [level[region] for level, region in zip(rows_T, regions)])
        levels = None if self.weight_temperature is None else \
            torch.repeat_interleave(
                torch.arange(len(regions), device=selected_T.device),
                torch.stack([region.sum() for region in regions]))
        if self.task == 'reg':
            bins = self.reg_max + 1
            selected_S = selected_S.reshape(-1, bins)
            selected_T = selected_T.reshape(-1, bins)
            if levels is not None:
                levels = levels.repeat_interleave(4)
        loss = self.divergence(
            selected_S, selected_T,
            weight=self.row_weights(selected_T, levels, len(regions)),
            avg_factor=self.avg_factor)
        return self.loss_weight * loss

    def kd_maps(self,
                logits_S: Sequence[Tensor],
                logits_T: Sequence[Tensor],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Optional[Sequence[Dict]] = None
                ) -> Dict[str, List[Tensor]]:
        """The region of every level, for visualisation; takes the arguments
        of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: ``region`` (e.g. ``'pos'``): one
            ``(N, H_l, W_l)`` map per level, the share of each position's
            ``A`` priors that are in the region (0 or 1 with one prior).
        """
        _, levels_T = pair_levels(type(self).__name__, logits_S, logits_T)
        _, regions = self._level_regions(levels_T, batch_gt_instances,
                                         batch_img_metas)
        # mmdet's prior order is (h, w, prior) within a level
        return {
            self.region: [
                region.reshape(len(region), *level.shape[-2:],
                            -1).float().mean(-1)
                for region, level in zip(regions, levels_T)
            ]
        }

    def _level_regions(self, levels_T: List[Tensor],
                       batch_gt_instances: Sequence[InstanceData],
                       batch_img_metas: Optional[Sequence[Dict]]
                       ) -> Tuple[List[Tensor], List[Tensor]]:
        """The teacher rows ``(N, H_l * W_l * A, D)`` and the boolean
        regions ``(N, H_l * W_l * A)`` of ``(N, A * D, H_l, W_l)`` levels."""
        rows_T = [self._to_rows(level) for level in levels_T]
        featmap_sizes = [tuple(level.shape[-2:]) for level in levels_T]
        return rows_T, self.regions(featmap_sizes, batch_gt_instances,
                                    rows_T, batch_img_metas)

    def row_weights(self,
                    rows_T: Tensor,
                    levels: Optional[Tensor] = None,
                    num_levels: int = 1) -> Optional[Tensor]:
        """Teacher-softmax weights of the rows of each level, summing to the
        level's row count; None without ``weight_temperature``.

        Args:
            rows_T (Tensor): teacher rows ``(M, D)``.
            levels (Tensor, optional): level index of each row ``(M, )``;
                None: all rows are one level.
            num_levels (int): number of levels.
        """
        if self.weight_temperature is None:
            return None
        summary = rows_T.sum(1) if self.task == 'reg' else rows_T.max(1)[0]
        summary = summary / self.weight_temperature
        if levels is None:
            return F.softmax(summary, dim=0) * rows_T.shape[0]
        # softmax within each level: exp(u - max_l) / sum_l, times count_l
        level_max = summary.new_full((num_levels, ), -float('inf'))
        level_max = level_max.scatter_reduce(0, levels, summary, 'amax')
        exp = (summary - level_max[levels]).exp()
        level_sum = exp.new_zeros(num_levels).index_add(0, levels, exp)
        counts = torch.bincount(levels, minlength=num_levels).to(exp.dtype)
        return exp / level_sum[levels] * counts[levels]

    @torch.no_grad()
    def regions(self,
                featmap_sizes: List[Tuple[int, int]],
                batch_gt_instances: Sequence[InstanceData],
                rows_T: List[Tensor],
                batch_img_metas: Optional[Sequence[Dict]] = None
                ) -> List[Tensor]:
        """Boolean region masks, one ``(N, H_l * W_l * A)`` per level."""
        name = type(self).__name__
        num_imgs = rows_T[0].shape[0]
        if len(featmap_sizes) != self.prior_generator.num_levels:
            raise MMRSKDError(
                f'{name}: {len(featmap_sizes)} head levels but the '
                f'prior_generator has {self.prior_generator.num_levels} '
                'strides; give one stride per mapped level')
        if len(batch_gt_instances) != num_imgs or (
                batch_img_metas is not None
                and len(batch_img_metas) != num_imgs):
            raise MMRSKDError(
                f'{name}: {len(batch_gt_instances)} batch_gt_instances for a '
                f'batch of {num_imgs} images; map the gt instances and metas '
                'of the same batch')
        if batch_img_metas is not None and any(
                'pad_shape' not in meta for meta in batch_img_metas):
            raise MMRSKDError(
                f"{name}: batch_img_metas lack pad_shape (set by mmdet's "
                "DetDataPreprocessor); map batch_img_metas='img_metas'")
        if self.region == 'teacher_score':  # reads the logits: not cached
            masks, num_level_priors = self._masks(
                featmap_sizes, batch_gt_instances, rows_T, batch_img_metas)
            return list(masks.split(num_level_priors, dim=1))
        snapshot = self.region_cache.snapshot(
            batch_gt_instances, batch_img_metas, featmap_sizes,
            rows_T[0].device)
        cached = self.region_cache.get(self._region_spec, batch_gt_instances,
                                       snapshot)
        if cached is None:
            cached = self._masks(featmap_sizes, batch_gt_instances, rows_T,
                                 batch_img_metas)
            self.region_cache.put(self._region_spec, batch_gt_instances,
                                  snapshot, cached)
        masks, num_level_priors = cached
        return list(masks.split(num_level_priors, dim=1))

    def _masks(self, featmap_sizes: List[Tuple[int, int]],
               batch_gt_instances: Sequence[InstanceData],
               rows_T: List[Tensor],
               batch_img_metas: Optional[Sequence[Dict]]
               ) -> Tuple[Tensor, List[int]]:
        """The region ``(N, P)`` over all levels and the priors per
        level."""
        priors, num_level_priors, valid = self._priors(
            featmap_sizes, rows_T[0].shape[0], batch_img_metas,
            rows_T[0].device)
        if self.region == 'teacher_score':
            scores = torch.cat(rows_T, dim=1).sigmoid().max(-1)[0]
            scores = scores.masked_fill(~valid, 0)
            masks = scores > self.score_ratio * scores.max(1, keepdim=True)[0]
            return masks, num_level_priors
        masks = torch.zeros_like(valid)
        # valid priors per image and level, with one host sync
        counts = torch.stack([
            flags.sum(1) for flags in valid.split(num_level_priors, dim=1)
        ], dim=1).tolist()
        for img, gt_instances in enumerate(batch_gt_instances):
            # assign among the valid priors only, level counts included
            img_valid = valid[img]
            masks[img, img_valid] = self._image_region(
                priors[img_valid], counts[img], gt_instances)
        return masks, num_level_priors

    def _priors(self, featmap_sizes: List[Tuple[int, int]], num_imgs: int,
                batch_img_metas: Optional[Sequence[Dict]],
                device: torch.device) -> Tuple[Tensor, List[int], Tensor]:
        """The priors ``(P, 4)`` of all levels, their count per level and
        their validity ``(N, P)``. They depend only on the arguments (not on
        the GT), so the last ones are kept and reused while those match,
        as they do from step to step."""
        pads = None if batch_img_metas is None else tuple(
            tuple(meta['pad_shape'][:2]) for meta in batch_img_metas)
        key = (tuple(map(tuple, featmap_sizes)), num_imgs, pads, str(device))
        if self._last_priors is not None and self._last_priors[0] == key:
            return self._last_priors[1]
        level_priors = self.prior_generator.grid_priors(
            featmap_sizes, device=device)
        num_level_priors = [len(priors) for priors in level_priors]
        priors = torch.cat(level_priors).float()
        valid = priors.new_ones((num_imgs, len(priors)), dtype=torch.bool)
        if batch_img_metas is not None:
            valid = torch.stack([
                torch.cat(self.prior_generator.valid_flags(
                    featmap_sizes, meta['pad_shape'][:2], device=device))
                for meta in batch_img_metas
            ])
        self._last_priors = (key, (priors, num_level_priors, valid))
        return self._last_priors[1]

    def _image_region(self, priors: Tensor, num_level_priors: List[int],
                      gt_instances: InstanceData) -> Tensor:
        """The region of one image over ``priors`` ``(P, 4)``: ``(P, )``."""
        boxes = to_box_type(gt_instances.bboxes).to(priors.device)
        if isinstance(boxes, QuadriBoxes):
            boxes = boxes.convert_to('rbox')
        labels = gt_instances.labels.to(priors.device)
        if self.region == 'gt_center':
            centres = (priors[:, :2] + priors[:, 2:]) / 2
            return boxes.find_inside_points(centres).any(dim=1)
        if self.region == 'vlr':
            result = self.vlr_assigner.assign(
                InstanceData(priors=priors), num_level_priors,
                InstanceData(bboxes=boxes, labels=labels))
        elif isinstance(boxes, RotatedBoxes):
            result = self.rbox_assigner.assign(
                InstanceData(
                    priors=HorizontalBoxes(priors).convert_to('rbox')),
                num_level_priors, InstanceData(bboxes=boxes, labels=labels))
        else:
            result = self.hbox_assigner.assign(
                InstanceData(priors=priors), num_level_priors,
                InstanceData(bboxes=boxes.tensor, labels=labels))
        return result.gt_inds > 0

    def _to_rows(self, logits: Tensor) -> Tensor:
        """``(N, A * D, H, W)`` to ``(N, H * W * A, D)``, mmdet's prior
        order."""
        name = type(self).__name__
        if logits.dim() != 4 or logits.shape[1] % self.num_base_priors:
            raise MMRSKDError(
                f'{name}: expected (N, A * D, H, W) head outputs with '
                f'A={self.num_base_priors} priors per position, got '
                f'{tuple(logits.shape)}; map the per-level head outputs')
        num_imgs, channels = logits.shape[:2]
        width = channels // self.num_base_priors
        if self.task == 'reg' and width != 4 * (self.reg_max + 1):
            raise MMRSKDError(
                f'{name}: {width} regression logits per prior do not match '
                f'reg_max={self.reg_max} (expected {4 * (self.reg_max + 1)});'
                " task='reg' needs a GFL-style distribution head")
        return logits.permute(0, 2, 3, 1).reshape(num_imgs, -1, width)
