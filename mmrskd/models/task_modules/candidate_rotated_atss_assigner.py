from typing import List, Optional

import torch
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.assigners import RotatedATSSAssigner
from mmrotate.models.task_modules.assigners.rotated_atss_assigner import \
    bbox_center_distance
from torch import Tensor

from mmrskd.registry import TASK_UTILS


@TASK_UTILS.register_module()
class CandidateRotatedATSSAssigner(RotatedATSSAssigner):
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
    too; LTD's TASD regions read only ``gt_inds``.
    """

    def __init__(self, topk: int = 9):
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
