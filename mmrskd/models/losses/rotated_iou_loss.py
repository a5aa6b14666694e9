"""Rotated IoU loss that runs on the CPU.

mmcv's ``diff_iou_rotated_2d`` (behind mmrotate's ``RotatedIoULoss``) has only
a CUDA kernel. This computes the same differentiable IoU of rotated boxes in
plain PyTorch: the intersection polygon of two convex quadrilaterals is made
of the corners of each box inside the other and the crossings of their
edges; its vertices are ordered by angle around their mean and its area
follows from the shoelace formula. Gradients flow through the vertex
positions (the ordering is piecewise constant).
"""
import math

import torch
import torch.nn as nn
from mmdet.models.losses.utils import weighted_loss

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

EPS = 1e-6


def rbox_corners(boxes):
    """Corners of ``(N, 5)`` boxes ``(cx, cy, w, h, angle_rad)``.

    Returns:
        Tensor: ``(N, 4, 2)``, counter-clockwise in a y-up frame (clockwise
        on screen), starting at ``(+w/2, +h/2)`` of the box frame.
    """
    cx, cy, w, h, angle = boxes.unbind(-1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    signs = boxes.new_tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5],
                              [0.5, -0.5]])
    dx = signs[:, 0] * w[:, None]  # (N, 4)
    dy = signs[:, 1] * h[:, None]
    x = cx[:, None] + dx * cos[:, None] - dy * sin[:, None]
    y = cy[:, None] + dx * sin[:, None] + dy * cos[:, None]
    return torch.stack([x, y], dim=-1)


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside(points, corners):
    """``(N, P)`` mask of ``points (N, P, 2)`` inside convex ``corners``
    ``(N, 4, 2)`` (either orientation)."""
    edges = corners.roll(-1, dims=1) - corners  # (N, 4, 2)
    rel = points[:, :, None, :] - corners[:, None, :, :]  # (N, P, 4, 2)
    side = _cross(edges[:, None], rel)  # (N, P, 4)
    return (side >= -EPS).all(-1) | (side <= EPS).all(-1)


def _edge_crossings(c1, c2):
    """Crossing points of the 4 edges of ``c1`` with the 4 edges of ``c2``.

    Returns:
        tuple[Tensor, Tensor]: points ``(N, 16, 2)`` and validity ``(N, 16)``.
    """
    p, r = c1, c1.roll(-1, dims=1) - c1  # (N, 4, 2)
    q, s = c2, c2.roll(-1, dims=1) - c2
    p, r = p[:, :, None], r[:, :, None]  # (N, 4, 1, 2)
    q, s = q[:, None], s[:, None]  # (N, 1, 4, 2)
    denom = _cross(r, s)  # (N, 4, 4)
    parallel = denom.abs() < EPS
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = _cross(q - p, s) / safe
    u = _cross(q - p, r) / safe
    valid = ~parallel & (t > 0) & (t < 1) & (u > 0) & (u < 1)
    points = p + t[..., None] * r
    return points.flatten(1, 2), valid.flatten(1, 2)


def polygon_area_of_masked_vertices(vertices, valid):
    """Area of the convex polygon spanned by the valid ``vertices``.

    Args:
        vertices (Tensor): ``(N, V, 2)`` candidate vertices.
        valid (Tensor): ``(N, V)`` bool.

    Returns:
        Tensor: ``(N, )`` area; 0 where fewer than 3 vertices are valid.
    """
    count = valid.sum(1, keepdim=True).clamp(min=1)
    weights = valid.to(vertices.dtype)[..., None]
    centre = (vertices * weights).sum(1, keepdim=True) / count[..., None]
    rel = vertices - centre
    angle = torch.atan2(rel[..., 1], rel[..., 0])
    angle = torch.where(valid, angle, angle.new_full((), 4 * math.pi))
    order = angle.argsort(dim=1)
    rel = rel.gather(1, order[..., None].expand_as(rel))
    valid = valid.gather(1, order)
    # invalid vertices sort last; replace them by the first vertex so the
    # closing edges they form have zero area
    rel = torch.where(valid[..., None], rel, rel[:, :1].expand_as(rel))
    area = 0.5 * _cross(rel, rel.roll(-1, dims=1)).sum(1)
    return torch.where(valid.sum(1) >= 3, area.abs(), area.new_zeros(()))


def rotated_iou(pred, target):
    """Differentiable IoU of aligned rotated boxes.

    Args:
        pred (Tensor): ``(N, 5)`` boxes ``(cx, cy, w, h, angle_rad)``.
        target (Tensor): ``(N, 5)``.

    Returns:
        Tensor: ``(N, )`` IoU in [0, 1].
    """
    # fp16/bf16 inputs (AMP) are computed in fp32; fp64 stays fp64
    dtype = torch.promote_types(pred.dtype, torch.float32)
    pred, target = pred.to(dtype), target.to(dtype)
    c1, c2 = rbox_corners(pred), rbox_corners(target)
    crossings, crossing_valid = _edge_crossings(c1, c2)
    vertices = torch.cat([c1, c2, crossings], dim=1)
    valid = torch.cat([_inside(c1, c2), _inside(c2, c1), crossing_valid],
                      dim=1)
    inter = polygon_area_of_masked_vertices(vertices, valid)
    area1 = pred[:, 2].clamp(min=0) * pred[:, 3].clamp(min=0)
    area2 = target[:, 2].clamp(min=0) * target[:, 3].clamp(min=0)
    union = (area1 + area2 - inter).clamp(min=EPS)
    return (inter / union).clamp(0, 1)


@weighted_loss
def rotated_iou_loss(pred, target, mode='log', eps=EPS):
    iou = rotated_iou(pred, target)
    if mode == 'linear':
        return 1 - iou
    if mode == 'square':
        return 1 - iou**2
    return -iou.clamp(min=eps).log()


@MODELS.register_module()
class RotatedIoULoss(nn.Module):
    """IoU loss of rotated boxes, CPU and GPU, drop-in for mmrotate's
    CUDA-only ``RotatedIoULoss`` (same arguments and modes).

    Under ``default_scope='mmrskd'`` an unprefixed ``type='RotatedIoULoss'``
    resolves to this class; ``type='mmrotate.RotatedIoULoss'`` still names
    mmrotate's.

    Args:
        mode (str): ``'linear'`` (1 - IoU), ``'square'`` (1 - IoU²) or
            ``'log'`` (-log IoU). Defaults to ``'log'``.
        eps (float): floor of the IoU inside the log.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight (float): multiplier of the loss.
    """

    MODES = ('linear', 'square', 'log')

    def __init__(self, mode='log', eps=EPS, reduction='mean',
                 loss_weight=1.0):
        super().__init__()
        if mode not in self.MODES:
            raise MMRSKDError(f'RotatedIoULoss.mode must be one of '
                              f'{self.MODES}, got {mode!r}')
        self.mode = mode
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred, target, weight=None, avg_factor=None,
                reduction_override=None, **kwargs):
        """Loss of ``pred (N, 5)`` against ``target (N, 5)``; ``weight`` is
        ``(N, )`` or ``(N, 5)`` (then averaged over the last dim, as
        mmrotate does)."""
        reduction = reduction_override or self.reduction
        nothing_to_learn = pred.numel() == 0 or (
            weight is not None and not torch.any(weight > 0))
        if nothing_to_learn and reduction != 'none':
            return pred.sum() * 0  # keeps the graph, value 0
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        return self.loss_weight * rotated_iou_loss(
            pred, target, weight, mode=self.mode, eps=self.eps,
            reduction=reduction, avg_factor=avg_factor, **kwargs)
