"""IoU of horizontal boxes with rotated boxes, pair by pair, in float64:
what mmcv's CPU ``box_iou_rotated(..., aligned=True)`` computes for
axis-aligned priors against rotated GT, without its cost of about 1 µs a
pair (its CPU op indexes the tensors pair by pair)."""
import torch
from torch import Tensor

# the sides and centres mmrotate's ``rbbox_overlaps`` gives mmcv's kernel
MIN_SIDE = 1e-3
MAX_CENTRE = 1e7
# a box whose sine or cosine is below this is intersected as a rectangle:
# the edge clipping below needs edges that cross the other box's at an
# angle (the rectangle's error is this times the aspect ratio, about 1e-6)
AXIS_ALIGNED = 1e-7
# pairs computed together: (CHUNK, 4) float64 temporaries stay small, which
# is faster on the CPU than (N, 4) ones for N in the thousands, and bounds
# the memory
CHUNK = 2048


def _inside_part(px: Tensor, py: Tensor, dx: Tensor, dy: Tensor,
                 half_x: Tensor, half_y: Tensor) -> Tensor:
    """Length ``t1 - t0`` (0 when empty) of the part ``[t0, t1]`` of the
    edges ``p + t d`` (``t`` in [0, 1]) inside ``[-half_x, half_x] x
    [-half_y, half_y]`` (Liang-Barsky): ``(N, 4)`` edges of ``(N, 1)``
    boxes; ``d`` must have no zero component."""
    # an edge leaves each slab by the side it heads to, enters by the other
    exit_x, exit_y = torch.copysign(half_x, dx), torch.copysign(half_y, dy)
    t0 = torch.maximum((-exit_x - px) / dx, (-exit_y - py) / dy).clamp(min=0)
    t1 = torch.minimum((exit_x - px) / dx, (exit_y - py) / dy).clamp(max=1)
    return (t1 - t0).clamp(min=0)


def aligned_hbox_rbox_iou(hboxes: Tensor, rboxes: Tensor) -> Tensor:
    r"""IoU of each horizontal box with the rotated box of the same row.

    The intersection area of the axis-aligned box :math:`H` and the rotated
    box :math:`R` is, by Green's theorem, :math:`\frac12 \oint (x\,dy -
    y\,dx)` over its boundary: the parts of :math:`H`'s edges inside
    :math:`R` and of :math:`R`'s edges inside :math:`H` (both boxes
    counter-clockwise). The part ``[t0, t1]`` of an edge ``p + t d``
    contributes ``(t1 - t0) cross(p, d)``, and each part is a Liang-Barsky
    clip of one box's edge by the other box, axis-aligned in its own frame
    (``R``'s edges in the image frame, ``H``'s in ``R``'s frame). Edges
    along each other would be counted twice, so a box within
    ``AXIS_ALIGNED`` of the axes is intersected as a rectangle.

    Sides below 1e-3 are raised to 1e-3 and centres clipped to ±1e7, as
    mmrotate's ``rbbox_overlaps`` does before mmcv's kernel, so the values
    are those of mmcv's kernel (float32 arithmetic, about 5e-7 away)
    computed exactly.

    Args:
        hboxes (Tensor): ``(N, 4)`` boxes ``x1, y1, x2, y2``.
        rboxes (Tensor): ``(N, 5)`` boxes ``cx, cy, w, h, angle`` (radians,
            as mmrotate's ``RotatedBoxes``).

    Returns:
        Tensor: ``(N, )`` float64 IoUs.
    """
    return torch.cat([
        _chunk_iou(hboxes[start:start + CHUNK].double(),
                   rboxes[start:start + CHUNK].double())
        for start in range(0, len(hboxes), CHUNK)
    ] or [hboxes.new_zeros(0, dtype=torch.float64)])


def _chunk_iou(hboxes: Tensor, rboxes: Tensor) -> Tensor:
    """:func:`aligned_hbox_rbox_iou` of float64 boxes."""
    centre = ((hboxes[:, :2] + hboxes[:, 2:]) / 2).clamp(-MAX_CENTRE,
                                                         MAX_CENTRE)
    # (N, 1) columns, broadcast over the 4 edges; the frame is centred on H
    half_x, half_y = ((hboxes[:, 2:] - hboxes[:, :2]).clamp(min=MIN_SIDE) /
                      2).split(1, dim=1)
    cx, cy = (rboxes[:, :2].clamp(-MAX_CENTRE, MAX_CENTRE) - centre).split(
        1, dim=1)
    half_w, half_h = (rboxes[:, 2:4].clamp(min=MIN_SIDE) / 2).split(1, dim=1)
    cos, sin = rboxes[:, 4:5].cos(), rboxes[:, 4:5].sin()
    # the corners of a box in its own frame, counter-clockwise, and its
    # edges from each corner to the next
    sign_u = hboxes.new_tensor([-1., 1., 1., -1.])
    sign_v = hboxes.new_tensor([-1., -1., 1., 1.])
    edge_u = hboxes.new_tensor([2., 0., -2., 0.])
    edge_v = hboxes.new_tensor([0., 2., 0., -2.])

    # R's edges in the image frame, clipped by H (edge vectors from the
    # sides, not as differences of far corners)
    u, v = sign_u * half_w, sign_v * half_h
    px, py = cx + u * cos - v * sin, cy + u * sin + v * cos
    du, dv = edge_u * half_w, edge_v * half_h
    dx, dy = du * cos - dv * sin, du * sin + dv * cos
    r_edges = (_inside_part(px, py, dx, dy, half_x, half_y) *
               (px * dy - py * dx)).sum(1)

    # H's edges in R's frame, clipped by R; in the image frame each has
    # cross(p, d) = 2 half_x half_y
    x, y = sign_u * half_x - cx, sign_v * half_y - cy
    dx, dy = edge_u * half_x, edge_v * half_y
    h_edges = _inside_part(x * cos + y * sin, y * cos - x * sin,
                           dx * cos + dy * sin, dy * cos - dx * sin,
                           half_w, half_h).sum(1) * (2 * half_x * half_y)[:, 0]
    inter = (r_edges + h_edges) / 2

    # near the axes: a rectangle, its sides swapped near 90 degrees
    upright = cos.abs() < AXIS_ALIGNED
    rect_w = torch.where(upright, half_h, half_w)
    rect_h = torch.where(upright, half_w, half_h)
    rect_inter = ((torch.minimum(half_x, cx + rect_w) -
                   torch.maximum(-half_x, cx - rect_w)).clamp(min=0) *
                  (torch.minimum(half_y, cy + rect_h) -
                   torch.maximum(-half_y, cy - rect_h)).clamp(min=0))
    aligned = upright | (sin.abs() < AXIS_ALIGNED)
    inter = torch.where(aligned, rect_inter, inter[:, None])[:, 0]
    union = 4 * (half_x * half_y + half_w * half_h)[:, 0] - inter
    return inter / union
