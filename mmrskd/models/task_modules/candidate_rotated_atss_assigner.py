from typing import List, Optional

from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.models.task_modules.atss_candidates import (ATSSCandidates,
                                                       best_per_prior)
from mmrskd.registry import TASK_UTILS

# mmrotate's marker of the pairs that are not positive
INF = 100000000


@TASK_UTILS.register_module()
class CandidateRotatedATSSAssigner(BaseAssigner):
    """mmrotate's ``RotatedATSSAssigner`` (no ``alpha``, no ignored boxes)
    computed on its candidates only.

    ``RotatedATSSAssigner.assign`` reads the prior-GT IoU matrix only at its
    candidates (per level and GT the ``topk`` priors of closest centre):
    for their mean + std threshold and for the positives, every other entry
    being replaced by -INF before the argmax. mmcv's CPU rotated IoU costs
    about 1 µs a pair and an image has ``P x k`` pairs (98k for the 9-anchor
    RetinaNet at 256 px) against ``5 * topk * k`` candidates, and the
    assignment itself needs only the candidates too. So this takes the
    centre distances, the candidates and their kernel IoUs
    (:class:`ATSSCandidates`: mmrotate's values, so the same ties) and
    runs mmrotate's steps on the candidates alone: ``gt_inds``,
    ``max_overlaps`` and ``labels`` are mmrotate's (tested).

    Args:
        topk (int): candidates per level. Defaults to 9.
    """

    def __init__(self, topk: int = 9):
        self.topk = topk

    def assign(self, pred_instances: InstanceData,
               num_level_priors: List[int], gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               candidates: Optional[ATSSCandidates] = None) -> AssignResult:
        """Assign GT to priors as mmrotate's ``RotatedATSSAssigner``.

        Args:
            pred_instances (InstanceData): ``priors`` ``(P, 5)`` of all
                levels (a tensor or ``RotatedBoxes``).
            num_level_priors (list[int]): priors per level, in order.
            gt_instances (InstanceData): ``bboxes`` (``RotatedBoxes``) and
                ``labels``.
            gt_instances_ignore (InstanceData, optional): unused.
            candidates (ATSSCandidates, optional): the ATSS search of these
                priors (or of their horizontal form) and GT, when another
                assigner shares it.

        Returns:
            AssignResult: ``gt_inds`` (1-based, 0 for negatives),
            ``max_overlaps`` (-INF for negatives) and ``labels``.
        """
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        priors = pred_instances.priors
        num_gt, num_priors = len(gt_bboxes), len(priors)
        assigned_gt_inds = gt_labels.new_zeros((num_priors, ))
        assigned_labels = gt_labels.new_full((num_priors, ), -1)
        if num_gt == 0 or num_priors == 0:
            return AssignResult(num_gt, assigned_gt_inds,
                                gt_bboxes.tensor.new_zeros((num_priors, )),
                                labels=assigned_labels)
        if candidates is None:
            if not isinstance(priors, RotatedBoxes):
                priors = RotatedBoxes(priors)
            candidates = ATSSCandidates(priors, gt_bboxes, num_level_priors)
        candidate_idxs, candidate_overlaps = candidates.candidates(self.topk)
        thresholds = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
        is_pos = candidate_overlaps >= thresholds[None, :]
        # the candidates' centres inside their GT, in mmrotate's layout
        centres = candidates.priors.centers[candidate_idxs].view(-1, 2)
        is_pos &= gt_bboxes.repeat(len(candidate_idxs), 1).find_inside_points(
            centres, is_aligned=True, eps=0.01).view(-1, num_gt)

        # a prior positive for several GT takes the one of highest IoU, the
        # lowest index on ties (mmrotate's argmax)
        rows, cols = is_pos.nonzero(as_tuple=True)
        prior_idxs, overlaps = candidate_idxs[rows, cols], candidate_overlaps[
            rows, cols]
        max_overlaps, argmax = best_per_prior(prior_idxs, cols, overlaps,
                                              num_priors, -INF)
        positive = max_overlaps != -INF
        assigned_gt_inds[positive] = argmax[positive] + 1
        assigned_labels[positive] = gt_labels[argmax[positive]]
        return AssignResult(num_gt, assigned_gt_inds, max_overlaps,
                            labels=assigned_labels)
