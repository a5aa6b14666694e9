from functools import cached_property
from typing import Dict, List, Tuple

import torch
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes, bbox_overlaps
from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
from torch import Tensor


class ATSSCandidates:
    """ATSS's candidates of one image: for every GT and level, the ``topk``
    priors whose centres are closest to the GT's, with their IoUs.

    LTD's two TASD regions start from the same search (the ATSS positives,
    and the VLR's threshold), so :class:`TASDRegionAssigner` computes it once
    per image and hands it to both assigners: the ``(P, k)`` centre
    distances once, the candidates and their IoUs once per ``topk``.

    Args:
        priors (BaseBoxes): the ``(P, )`` priors of all levels, horizontal
            or rotated.
        gt_boxes (BaseBoxes): the ``(k, )`` GT, horizontal or rotated.
        num_level_priors (list[int]): priors per level, in order.
    """

    def __init__(self, priors: BaseBoxes, gt_boxes: BaseBoxes,
                 num_level_priors: List[int]):
        self.priors = priors
        self.gt_boxes = gt_boxes
        self.num_level_priors = num_level_priors
        self._by_topk: Dict[int, Tuple[Tensor, Tensor]] = {}

    @cached_property
    def distances(self) -> Tensor:
        """``(P, k)`` prior-GT centre distances, the values of mmdet's and
        mmrotate's ATSS, so that ties break the same way."""
        # x and y apart and in place: 4x faster than their (P, k, 2)
        # differences, two (P, k) matrices at most, the same float32
        # operations (tested against mmrotate's)
        prior_x, prior_y = self.priors.centers.unbind(1)
        gt_x, gt_y = self.gt_boxes.centers.float().unbind(1)
        dx, dy = prior_x[:, None] - gt_x[None], prior_y[:, None] - gt_y[None]
        return dx.mul_(dx).add_(dy.mul_(dy)).sqrt_()

    def candidates(self, topk: int) -> Tuple[Tensor, Tensor]:
        """The candidates' prior indices ``(L * topk, k)`` (fewer rows where
        a level has fewer priors) and their IoUs with their GT (as
        :meth:`pair_ious` gives them)."""
        if topk not in self._by_topk:
            indices, start = [], 0
            for count in self.num_level_priors:
                if count > 0:
                    _, level = self.distances[start:start + count].topk(
                        min(topk, count), dim=0, largest=False)
                    indices.append(level + start)
                start += count
            indices = torch.cat(indices, dim=0)
            gt_index = torch.arange(
                len(self.gt_boxes), device=indices.device).expand_as(indices)
            ious = self.pair_ious(indices.flatten(), gt_index.flatten())
            self._by_topk[topk] = (indices, ious.view_as(indices))
        return self._by_topk[topk]

    @property
    def rotated(self) -> bool:
        """Whether the IoUs are rotated ones (either box type not
        horizontal)."""
        return not (isinstance(self.priors, HorizontalBoxes)
                    and isinstance(self.gt_boxes, HorizontalBoxes))

    def pair_ious(self, rows: Tensor, cols: Tensor) -> Tensor:
        """IoU ``(n, )`` of the priors ``rows`` with the GT ``cols``: mmcv's
        rotated IoU kernel (mmrotate's ``RBboxOverlaps2D``, as mmrotate's
        ATSS computes them) when :attr:`rotated`, else mmdet's
        ``bbox_overlaps``."""
        if self.rotated:
            return RBboxOverlaps2D()(self.priors[rows].convert_to('rbox'),
                                     self.gt_boxes[cols].convert_to('rbox'),
                                     is_aligned=True)
        return bbox_overlaps(self.priors.tensor[rows],
                             self.gt_boxes.tensor[cols], is_aligned=True)


def best_per_prior(prior_idxs: Tensor, gt_idxs: Tensor, values: Tensor,
                   num_priors: int, fill: float) -> Tuple[Tensor, Tensor]:
    """Each prior's highest value among its pairs ``(prior_idxs[i],
    gt_idxs[i], values[i])``, ``(num_priors, )`` (``fill`` where it has
    none), and that pair's GT index ``(num_priors, )``, the lowest on ties
    as an argmax over the GT gives it (0 where it has none)."""
    best = values.new_full((num_priors, ), fill).scatter_reduce(
        0, prior_idxs, values, 'amax')
    is_best = values == best[prior_idxs]
    best_gt = prior_idxs.new_zeros(num_priors).scatter_reduce(
        0, prior_idxs[is_best], gt_idxs[is_best], 'amin', include_self=False)
    return best, best_gt
