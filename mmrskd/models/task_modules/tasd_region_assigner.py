from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes
from torch import Tensor

from mmrskd.models.task_modules.atss_candidates import ATSSCandidates
from mmrskd.models.task_modules.candidate_rotated_atss_assigner import \
    CandidateRotatedATSSAssigner
from mmrskd.registry import TASK_UTILS
from mmrskd.structures import to_box_type
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class TASDRegionAssigner:
    """The prior regions of LTD's task-aware spatial disentangle
    distillation (:class:`LTDTASDLoss`), each computed once per call.

    * ``'pos'``: the ATSS positives (mmdet's ``ATSSAssigner``;
      :class:`CandidateRotatedATSSAssigner`, mmrotate's assignment, for
      rotated or quadrilateral GT);
    * ``'vlr'``: the valuable localisation region (:class:`VLRAssigner`,
      over all priors of all levels, as LD defines it);
    * ``'gt_center'``: priors whose centre is inside a GT box;
    * ``'teacher_score'``: priors where the teacher's highest class
      probability exceeds ``score_ratio`` times its maximum over the image.

    Regions are computed on the priors of ``prior_generator`` (by default
    the GFL/ATSS anchors, ``8 * stride`` squares); with image metas the
    priors outside each image's padded area are left out, as mmdet's anchor
    heads do with their ``valid_flags``, so ``'pos'`` is exactly an mmdet
    anchor head's ATSS assignment. With rotated GT, ``'pos'`` and ``'vlr'``
    share each image's ATSS search (:class:`ATSSCandidates`: the centre
    distances, and the candidates with their IoUs when both ``topk`` are
    equal).

    Args:
        prior_generator (dict): priors, one set per head level.
        topk (int): ATSS candidates per level (``'pos'``). Defaults to 9.
        vlr_assigner (dict): the ``'vlr'`` assigner. Defaults to
            ``VLRAssigner(topk=9, iou_mode='diou', lower_ratio=0.25)``.
        score_ratio (float): threshold ratio of ``'teacher_score'``.
            Defaults to 0.5.
    """

    REGIONS = ('pos', 'vlr', 'gt_center', 'teacher_score')

    def __init__(self,
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
                 score_ratio: float = 0.5):
        self.prior_generator = TASK_UTILS.build(prior_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.hbox_assigner = ATSSAssigner(topk)
        self.rbox_assigner = CandidateRotatedATSSAssigner(topk)
        self.vlr_assigner = TASK_UTILS.build(vlr_assigner)
        self.score_ratio = score_ratio
        self._last_priors = None  # see priors

    @torch.no_grad()
    def __call__(self,
                 regions: Sequence[str],
                 featmap_sizes: List[Tuple[int, int]],
                 batch_gt_instances: Sequence[InstanceData],
                 batch_img_metas: Optional[Sequence[Dict]] = None,
                 cls_rows_T: Optional[List[Tensor]] = None,
                 device: torch.device = torch.device('cpu'),
                 where: str = 'TASDRegionAssigner'
                 ) -> Dict[str, List[Tensor]]:
        """Boolean masks of each of ``regions``, one ``(N, H_l * W_l * A)``
        per level.

        Args:
            regions (Sequence[str]): names from :attr:`REGIONS`.
            featmap_sizes (list[tuple[int, int]]): ``(H_l, W_l)`` per level.
            batch_gt_instances (Sequence[InstanceData]): per image,
                ``bboxes`` (input pixels) and ``labels``.
            batch_img_metas (Sequence[dict], optional): metas with
                ``pad_shape``; without them every prior is valid.
            cls_rows_T (list[Tensor], optional): the teacher's class logits
                ``(N, H_l * W_l * A, C)`` per level (``'teacher_score'``).
            device (torch.device): device of the masks.
            where (str): the calling loss, for error messages.
        """
        num_imgs = len(batch_gt_instances)
        if len(featmap_sizes) != self.prior_generator.num_levels:
            raise MMRSKDError(
                f'{where}: {len(featmap_sizes)} head levels but the '
                f'prior_generator has {self.prior_generator.num_levels} '
                'strides; give one stride per mapped level')
        if batch_img_metas is not None and any(
                'pad_shape' not in meta for meta in batch_img_metas):
            raise MMRSKDError(
                f"{where}: batch_img_metas lack pad_shape (set by mmdet's "
                "DetDataPreprocessor); map batch_img_metas='img_metas'")
        priors, num_level_priors, valid = self.priors(
            featmap_sizes, num_imgs, batch_img_metas, device)
        masks = {}
        candidates = [None] * num_imgs  # per image, for all its GT regions
        for region in dict.fromkeys(regions):  # each once, in order
            if region == 'teacher_score':
                mask = self._teacher_score(cls_rows_T, valid)
            else:
                mask = self._gt_region(region, priors, num_level_priors,
                                       valid, batch_gt_instances, candidates)
            masks[region] = list(mask.split(num_level_priors, dim=1))
        return masks

    def priors(self, featmap_sizes: List[Tuple[int, int]], num_imgs: int,
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

    def _teacher_score(self, cls_rows_T: List[Tensor],
                       valid: Tensor) -> Tensor:
        scores = torch.cat(cls_rows_T, dim=1).sigmoid().max(-1)[0]
        scores = scores.masked_fill(~valid, 0)
        return scores > self.score_ratio * scores.max(1, keepdim=True)[0]

    def _gt_region(self, region: str, priors: Tensor,
                   num_level_priors: List[int], valid: Tensor,
                   batch_gt_instances: Sequence[InstanceData],
                   candidates: List[Optional[ATSSCandidates]]) -> Tensor:
        """The region ``(N, P)`` of every image, assigned among its valid
        priors; ``candidates`` holds each image's ATSS search, made here by
        the first region that needs it."""
        masks = torch.zeros_like(valid)
        # valid priors per image and level, with one host sync
        counts = torch.stack([
            flags.sum(1) for flags in valid.split(num_level_priors, dim=1)
        ], dim=1).tolist()
        for img, gt_instances in enumerate(batch_gt_instances):
            img_valid = valid[img]
            if candidates[img] is None:
                boxes = to_box_type(gt_instances.bboxes).to(priors.device)
                if isinstance(boxes, QuadriBoxes):
                    boxes = boxes.convert_to('rbox')
                # cheap until used: the distances are computed on demand
                candidates[img] = ATSSCandidates(
                    HorizontalBoxes(priors[img_valid]), boxes, counts[img])
            masks[img, img_valid] = self._image_region(
                region, candidates[img],
                gt_instances.labels.to(priors.device))
        return masks

    def _image_region(self, region: str, candidates: ATSSCandidates,
                      labels: Tensor) -> Tensor:
        """The region of one image over its priors: ``(P, )``."""
        priors, boxes = candidates.priors, candidates.gt_boxes
        num_level_priors = candidates.num_level_priors
        if region == 'gt_center':
            return boxes.find_inside_points(priors.centers).any(dim=1)
        gt_instances = InstanceData(bboxes=boxes, labels=labels)
        if region == 'vlr':
            result = self.vlr_assigner.assign(
                InstanceData(priors=priors.tensor), num_level_priors,
                gt_instances, candidates=candidates)
        elif isinstance(boxes, RotatedBoxes):
            result = self.rbox_assigner.assign(
                InstanceData(priors=priors.convert_to('rbox')),
                num_level_priors, gt_instances, candidates=candidates)
        else:
            result = self.hbox_assigner.assign(
                InstanceData(priors=priors.tensor), num_level_priors,
                InstanceData(bboxes=boxes.tensor, labels=labels))
        return result.gt_inds > 0
