"""GGHL's dense training targets of a batch, per level."""
from typing import Dict, List, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.structures.bbox import bbox2distance
from mmdet.utils import InstanceList
from torch import Tensor


def gghl_targets(assigner, prior_generator: MlvlPointGenerator,
                 strides: Sequence[int],
                 featmap_sizes: List[Tuple[int, int]],
                 batch_gt_instances: InstanceList,
                 device: torch.device) -> List[Dict[str, Tensor]]:
    """Dense targets of a batch, per level.

    Args:
        assigner (GGHLAssigner): the per-image assignment.
        prior_generator (MlvlPointGenerator): the cell centres.
        strides (Sequence[int]): strides of the levels.
        featmap_sizes (list[tuple]): (H_l, W_l) per level.
        batch_gt_instances (list[InstanceData]): GT ``bboxes`` (qbox, rbox
            or hbox) and ``labels`` per image.
        device (torch.device): device of the targets.

    Returns:
        list[dict[str, Tensor]]: per level, the :class:`GGHLAssigner`
        fields stacked to (B, N_l, ...) plus ``distances`` (B, N_l, 4), the
        ltrb distances of each cell centre to its GT HBB (0 on negatives).
    """
    per_image = [
        assigner.assign(gt.to(device), featmap_sizes, strides)
        for gt in batch_gt_instances
    ]
    points = prior_generator.grid_priors(
        featmap_sizes, dtype=torch.float32, device=device)
    targets = []
    for level, level_points in enumerate(points):
        fields = per_image[0][level].keys()
        level_targets = {
            key: torch.stack([img[level][key] for img in per_image])
            for key in fields
        }
        distances = bbox2distance(level_points[None],
                                  level_targets['bboxes'])
        level_targets['distances'] = distances * \
            level_targets['pos_mask'][..., None]
        targets.append(level_targets)
    return targets
