"""Pairwise IoU of rotated boxes for label assignment, fast on the CPU."""
import torch
from mmdet.structures.bbox import get_box_tensor
from mmrotate.structures.bbox import rbbox_overlaps
from torch import Tensor

from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@TASK_UTILS.register_module()
class FastRBboxOverlaps2D:
    """mmrotate's ``RBboxOverlaps2D`` that skips the pairs that cannot
    overlap: same values, several times faster on the CPU.

    mmcv's CPU ``box_iou_rotated`` spends about 1 µs on every pair, and an
    anchor-to-GT matrix is mostly disjoint pairs: on a 256-px Rotated
    RetinaNet batch it took 80% of the training step. Here only the pairs
    whose axis-aligned hulls meet go to the same kernel (through
    mmrotate's ``rbbox_overlaps``, aligned, with its clamping); the rest are
    0, which is what the kernel returns for them.

    Use it wherever a config names ``RBboxOverlaps2D``::

        assigner=dict(type='mmdet.MaxIoUAssigner', ...,
                      iou_calculator=dict(type='FastRBboxOverlaps2D'))

    Args (of ``__call__``):
        bboxes1 (RotatedBoxes | Tensor): ``(N, 5)`` or ``(N, 6)`` (a score
            column, ignored) boxes ``(cx, cy, w, h, angle_rad)``.
        bboxes2 (RotatedBoxes | Tensor): ``(M, 5)`` or ``(M, 6)``.
        mode (str): ``'iou'`` or ``'iof'`` (over the area of ``bboxes1``).
        is_aligned (bool): ``N == M`` and only the pairs ``(i, i)``.

    Returns:
        Tensor: ``(N, M)``, or ``(N, )`` when aligned.
    """

    def __call__(self, bboxes1, bboxes2, mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        if mode not in ('iou', 'iof'):
            raise MMRSKDError(
                f"FastRBboxOverlaps2D: mode must be 'iou' or 'iof', got "
                f'{mode!r}')
        bboxes1 = get_box_tensor(bboxes1)[..., :5]
        bboxes2 = get_box_tensor(bboxes2)[..., :5]
        if is_aligned or bboxes1.numel() == 0 or bboxes2.numel() == 0:
            return rbbox_overlaps(bboxes1, bboxes2, mode, is_aligned)
        rows, cols = self.candidate_pairs(bboxes1, bboxes2)
        overlaps = bboxes1.new_zeros((len(bboxes1), len(bboxes2)))
        if len(rows):
            overlaps[rows, cols] = rbbox_overlaps(
                bboxes1[rows], bboxes2[cols], mode, is_aligned=True).to(
                    overlaps.dtype)
        return overlaps

    @staticmethod
    def candidate_pairs(bboxes1: Tensor, bboxes2: Tensor):
        """Indices ``(rows, cols)`` of the pairs whose axis-aligned hulls
        meet (a superset of the overlapping pairs; sides clamped to ≥ 1e-3
        as mmrotate does)."""
        with torch.no_grad():
            lo1, hi1 = axis_aligned_hull(bboxes1)
            lo2, hi2 = axis_aligned_hull(bboxes2)
            meet = (lo1[:, None] <= hi2[None]) & (lo2[None] <= hi1[:, None])
            return meet.all(-1).nonzero(as_tuple=True)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'


def axis_aligned_hull(boxes: Tensor):
    """Corners ``(lo, hi)``, each ``(N, 2)``, of the axis-aligned boxes
    enclosing rotated ``boxes`` ``(N, 5)``."""
    centre, size, angle = boxes[:, :2], boxes[:, 2:4].clamp(min=1e-3), \
        boxes[:, 4:5]
    cos, sin = torch.cos(angle).abs(), torch.sin(angle).abs()
    half = 0.5 * torch.cat([size[:, :1] * cos + size[:, 1:] * sin,
                            size[:, :1] * sin + size[:, 1:] * cos], 1)
    return centre - half, centre + half
