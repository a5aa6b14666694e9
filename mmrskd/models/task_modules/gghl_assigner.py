"""GGHL label assignment: oriented-Gaussian heatmaps rendered per FPN level.

Huang et al., "A General Gaussian Heatmap Label Assignment for
Arbitrary-Oriented Object Detection", IEEE TIP 31, 2022 (arXiv 2109.12848).
"""
import math
from typing import List, Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import BaseBoxes, get_box_tensor
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.coders import GVFixCoder, GVRatioCoder
from mmrotate.structures.bbox import (RotatedBoxes, hbox2qbox, qbox2hbox,
                                      qbox2rbox, rbox2qbox)
from torch import Tensor

from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


def gt_boxes_to_qboxes(bboxes: Union[BaseBoxes, Tensor]) -> Tensor:
    """Return GT boxes of any mmrotate box type as quadrilaterals.

    Args:
        bboxes (BaseBoxes | Tensor): ``QuadriBoxes``/``RotatedBoxes``/
            ``HorizontalBoxes``, or a tensor of shape (G, 8), (G, 5) or
            (G, 4) read as qbox, rbox (cx, cy, w, h, radian) or xyxy.

    Returns:
        Tensor: (G, 8) vertices x1, y1, ..., x4, y4.
    """
    if isinstance(bboxes, BaseBoxes):
        return bboxes.convert_to('qbox').tensor
    boxes = get_box_tensor(bboxes)
    converters = {8: lambda b: b, 5: rbox2qbox, 4: hbox2qbox}
    if boxes.dim() != 2 or boxes.size(-1) not in converters:
        raise MMRSKDError(
            f'GGHLAssigner: gt_instances.bboxes has shape '
            f'{tuple(boxes.shape)}; expected (N, 8) qbox, (N, 5) rbox or '
            '(N, 4) hbox. Load GT with LoadAnnotations(box_type="qbox")')
    return converters[boxes.size(-1)](boxes)


@TASK_UTILS.register_module()
class GGHLAssigner:
    """Render GGHL's dense per-level targets from oriented GT boxes.

    For every GT whose horizontal box (HBB) is larger than ``min_gt_size``:

    1. FPN levels are chosen by ``L = max(HBB w, h)`` against
       ``level_size_thresholds`` ``t`` (scaled by input size /
       ``ref_img_size``): level 0 if ``L <= overlap * t0``, level k if
       ``t_{k-1} < L <= overlap * t_k``, the last level if ``L > t_{-1}``.
       Ranges overlap, so a GT can train two levels.
    2. On each chosen level (stride ``s``) an oriented Gaussian is centred on
       the cell ``(floor(cx / s), floor(cy / s))`` holding the polygon
       centroid (mean of its 4 vertices): for the integer cell offset ``d``,
       ``v = exp(-|E R(theta) d|^2 / 2)`` with
       ``E = diag(2 / r_long^e, 2 / r_short^e)``, ``r = side / (2 s)``, ``e =
       axis_exponent`` and ``theta`` the long-side angle, so ``v = 1`` at
       the centroid cell. It is evaluated in a window of
       ``+-(clip(HBB side / 2s, 1, window_radius_max[level]) + 1)`` cells.
    3. A cell is positive for the GT if ``v > pos_heatmap_thr`` and its
       centre lies strictly inside the HBB. Where several GTs qualify, the
       one with the largest ``v`` owns the cell's box targets (ties: the
       later GT, as in GGHL); the soft class target of each class is the
       largest ``v`` among its qualifying GTs.

    Angle convention: ``theta`` is the angle of the long side of the
    polygon's minimum-area rectangle (``qbox2rbox``, regularised to
    mmrotate's ``le90``: radians in [-pi/2, pi/2), x right, y down, positive
    from +x towards +y); the Gaussian is symmetric, so any equivalent angle
    gives the same target.

    Args:
        num_classes (int): number of object classes.
        level_size_thresholds (Sequence[float]): ``t``, one per level
            boundary, in pixels at ``ref_img_size``. GGHL: ``3 * 16 / 0.7``
            and ``3 * 64 / 0.7``.
        ref_img_size (int, optional): input size the thresholds are given
            for; ``None`` keeps them fixed. Defaults to 800.
        level_overlap (float): upper-range factor that lets sizes near a
            boundary train both levels. Defaults to 1.2.
        min_gt_size (float): GTs with ``max(HBB w, h) <= min_gt_size`` pixels
            are skipped. Defaults to 4.
        axis_exponent (float): ``e`` above (GGHL: 1 - 0.3). Defaults to 0.7.
        window_radius_max (Sequence[int]): cap of the Gaussian window radius
            per level. Defaults to (4, 3, 2).
        pos_heatmap_thr (float): minimum ``v`` of a positive cell.
            Defaults to 0.05.
        hbb_ratio_thr (float): GTs whose polygon covers more than this share
            of their HBB get zero vertex offsets (decoded as the HBB), as the
            head does at test time. Defaults to 0.9.
    """

    def __init__(self,
                 num_classes: int,
                 level_size_thresholds: Sequence[float] = (3 * 16 / 0.7,
                                                           3 * 64 / 0.7),
                 ref_img_size: int = 800,
                 level_overlap: float = 1.2,
                 min_gt_size: float = 4.0,
                 axis_exponent: float = 0.7,
                 window_radius_max: Sequence[int] = (4, 3, 2),
                 pos_heatmap_thr: float = 0.05,
                 hbb_ratio_thr: float = 0.9) -> None:
        if len(window_radius_max) != len(level_size_thresholds) + 1:
            raise MMRSKDError(
                f'GGHLAssigner: window_radius_max has '
                f'{len(window_radius_max)} entries but level_size_thresholds '
                f'defines {len(level_size_thresholds) + 1} levels; give one '
                'radius per level')
        self.num_classes = num_classes
        self.level_size_thresholds = tuple(level_size_thresholds)
        self.ref_img_size = ref_img_size
        self.level_overlap = level_overlap
        self.min_gt_size = min_gt_size
        self.axis_exponent = axis_exponent
        self.window_radius_max = tuple(window_radius_max)
        self.pos_heatmap_thr = pos_heatmap_thr
        self.hbb_ratio_thr = hbb_ratio_thr
        self.orc_coder = GVFixCoder()
        self.ratio_coder = GVRatioCoder()

    @property
    def num_levels(self) -> int:
        return len(self.window_radius_max)

    def level_masks(self, sizes: Tensor, img_size: float) -> Tensor:
        """Which levels each GT trains.

        Args:
            sizes (Tensor): (G,) ``max(HBB w, h)`` in pixels.
            img_size (float): longer side of the network input.

        Returns:
            Tensor: (num_levels, G) bool.
        """
        scale = 1.0 if self.ref_img_size is None else \
            img_size / self.ref_img_size
        bounds = [t * scale for t in self.level_size_thresholds]
        lower = [-math.inf] + bounds
        upper = [b * self.level_overlap for b in bounds] + [math.inf]
        return torch.stack([(sizes > lo) & (sizes <= up)
                            for lo, up in zip(lower, upper)])

    def assign(self, gt_instances: InstanceData,
               featmap_sizes: Sequence[Tuple[int, int]],
               strides: Sequence[float]) -> List[InstanceData]:
        """Render the targets of one image.

        Args:
            gt_instances (InstanceData): ``bboxes`` (any box type accepted by
                :func:`gt_boxes_to_qboxes`) and ``labels`` (G,).
            featmap_sizes (Sequence[tuple]): (H_l, W_l) per level.
            strides (Sequence[float]): stride per level.

        Returns:
            list[InstanceData]: per level, ``H_l * W_l`` entries in row-major
            (y, x) order with fields

            - ``heatmap`` (N, num_classes): soft class targets ``v``.
            - ``pos_mask`` (N,) bool.
            - ``gt_inds`` (N,) long: owning GT index, -1 for negatives.
            - ``bboxes`` (N, 4): owning GT's HBB, xyxy.
            - ``orc`` (N, 4): its gliding-vertex offsets (GVFixCoder order).
            - ``ratios`` (N,): its polygon-area / HBB-area ratio.
            - ``area_weights`` (N,): ``ln 2 / ln(sqrt(rx * ry) + 1)`` with
              ``rx, ry`` the clipped window radii.
        """
        if len(featmap_sizes) != self.num_levels:
            raise MMRSKDError(
                f'GGHLAssigner: {len(featmap_sizes)} feature levels but '
                f'{self.num_levels} configured; set window_radius_max and '
                'level_size_thresholds for the head\'s strides')
        labels = gt_instances.labels
        qboxes = gt_boxes_to_qboxes(gt_instances.bboxes).float()
        device = qboxes.device
        img_size = max(max(h * s, w * s)
                       for (h, w), s in zip(featmap_sizes, strides))

        hbboxes = qbox2hbox(qboxes)
        hbb_wh = hbboxes[:, 2:] - hbboxes[:, :2]
        sizes = hbb_wh.max(dim=1).values
        valid = (sizes > self.min_gt_size) & (hbb_wh > 0).all(dim=1)

        results = [
            self._empty_level(h * w, device)
            for (h, w) in featmap_sizes
        ]
        if not valid.any():
            return results

        gt_inds = valid.nonzero(as_tuple=True)[0]
        qboxes, hbboxes, labels = qboxes[gt_inds], hbboxes[gt_inds], \
            labels[gt_inds]
        # le90: width is the long side, theta its angle in [-pi/2, pi/2)
        long_side, short_side, theta = RotatedBoxes(
            qbox2rbox(qboxes)).regularize_boxes('le90')[:, 2:].unbind(dim=1)
        centroids = qboxes.view(-1, 4, 2).mean(dim=1)
        ratios = self.ratio_coder.encode(qboxes)[:, 0]
        orc = self.orc_coder.encode(qboxes)
        # near-horizontal boxes are decoded as their HBB: offsets 0
        orc[ratios > self.hbb_ratio_thr] = 0

        gt_geometry = dict(
            gt_inds=gt_inds, labels=labels, hbboxes=hbboxes, orc=orc,
            ratios=ratios, centroids=centroids, long_side=long_side,
            short_side=short_side, theta=theta)
        level_masks = self.level_masks(sizes[gt_inds], img_size)
        for level, ((h, w), stride) in enumerate(zip(featmap_sizes,
                                                     strides)):
            on_level = level_masks[level]
            if on_level.any():
                results[level] = self._render_level(
                    {k: v[on_level] for k, v in gt_geometry.items()},
                    level, h, w, float(stride))
        return results

    def _empty_level(self, num_cells: int, device) -> InstanceData:
        return InstanceData(
            heatmap=torch.zeros(num_cells, self.num_classes, device=device),
            pos_mask=torch.zeros(num_cells, dtype=torch.bool, device=device),
            gt_inds=torch.full((num_cells, ), -1, dtype=torch.long,
                               device=device),
            bboxes=torch.zeros(num_cells, 4, device=device),
            orc=torch.zeros(num_cells, 4, device=device),
            ratios=torch.zeros(num_cells, device=device),
            area_weights=torch.zeros(num_cells, device=device))

    def _render_level(self, gts: dict, level: int, height: int, width: int,
                      stride: float) -> InstanceData:
        """Render the GTs chosen for one level; all GT tensors are (G, ...).

        Every GT gets a window of the largest possible size; cells beyond
        its own radius, outside the map, below the threshold or outside its
        HBB are dropped before the per-cell maximum is taken.
        """
        device = gts['hbboxes'].device
        radius_max = self.window_radius_max[level]
        hbb_wh = gts['hbboxes'][:, 2:] - gts['hbboxes'][:, :2]
        radii = (hbb_wh / (2 * stride)).clamp(1, radius_max).floor()

        centre_cells = (gts['centroids'] / stride).floor()
        offsets = torch.arange(
            -radius_max - 1, radius_max + 2, device=device, dtype=torch.float)
        dy, dx = torch.meshgrid(offsets, offsets, indexing='ij')
        dx, dy = dx.reshape(1, -1), dy.reshape(1, -1)  # (1, K)
        cell_x = centre_cells[:, :1] + dx  # (G, K)
        cell_y = centre_cells[:, 1:] + dy

        cos, sin = gts['theta'].cos()[:, None], gts['theta'].sin()[:, None]
        along = cos * dx + sin * dy
        across = -sin * dx + cos * dy
        r_long = gts['long_side'][:, None] / (2 * stride)
        r_short = gts['short_side'][:, None] / (2 * stride)
        scale_long = 2 / r_long.clamp(min=1e-6).pow(self.axis_exponent)
        scale_short = 2 / r_short.clamp(min=1e-6).pow(self.axis_exponent)
        values = torch.exp(-((scale_long * along)**2 +
                             (scale_short * across)**2) / 2)

        centre_x = (cell_x + 0.5) * stride
        centre_y = (cell_y + 0.5) * stride
        hbb = gts['hbboxes']
        inside_hbb = (centre_x > hbb[:, :1]) & (centre_x < hbb[:, 2:3]) & \
            (centre_y > hbb[:, 1:2]) & (centre_y < hbb[:, 3:4])
        in_window = (dx.abs() <= radii[:, :1] + 1) & \
            (dy.abs() <= radii[:, 1:] + 1)
        on_map = (cell_x >= 0) & (cell_x < width) & (cell_y >= 0) & \
            (cell_y < height)
        candidate = (values > self.pos_heatmap_thr) & inside_hbb & \
            in_window & on_map

        gt_idx, _ = candidate.nonzero(as_tuple=True)
        cells = (cell_y * width + cell_x)[candidate].long()
        values = values[candidate]
        num_cells = height * width

        cell_max = values.new_zeros(num_cells).scatter_reduce(
            0, cells, values, reduce='amax')
        is_top = values == cell_max[cells]
        owner = torch.full((num_cells, ), -1, dtype=torch.long,
                           device=device).scatter_reduce(
                               0, cells[is_top], gt_idx[is_top],
                               reduce='amax')
        heatmap = values.new_zeros(num_cells * self.num_classes)
        heatmap.scatter_reduce_(
            0, cells * self.num_classes + gts['labels'][gt_idx], values,
            reduce='amax')

        result = self._empty_level(num_cells, device)
        result.heatmap = heatmap.view(num_cells, self.num_classes)
        pos = owner >= 0
        owner_pos = owner[pos]
        result.pos_mask = pos
        result.gt_inds[pos] = gts['gt_inds'][owner_pos]
        result.bboxes[pos] = hbb[owner_pos]
        result.orc[pos] = gts['orc'][owner_pos]
        result.ratios[pos] = gts['ratios'][owner_pos]
        area_weights = math.log(2) / torch.log(radii.prod(dim=1).sqrt() + 1)
        result.area_weights[pos] = area_weights[owner_pos]
        return result
