"""Boxes of the three types mmrskd reads, writes and evaluates.

* ``'hbox'``: (N, 4) ``x1, y1, x2, y2``, as mmdet's ``HorizontalBoxes``.
* ``'rbox'``: (N, 5) ``cx, cy, w, h, angle`` (radians, clockwise in image
  coordinates), as mmrotate's ``RotatedBoxes``.
* ``'qbox'``: (N, 8) ``x1, y1, ..., x4, y4``, as mmrotate's ``QuadriBoxes``
  and the DOTA polygons.

A plain tensor, array or list is typed by its last dimension.
"""
from typing import Union

import numpy as np
import torch
from mmdet.structures.bbox import BaseBoxes, convert_box_type, get_box_type
from torch import Tensor

from mmrskd.utils import MMRSKDError

BOX_DIMS = {'hbox': 4, 'rbox': 5, 'qbox': 8}
_TYPE_OF_DIM = {dim: name for name, dim in BOX_DIMS.items()}


def check_box_type(box_type, where='box_type'):
    """Raise a one-line error unless ``box_type`` is hbox, rbox or qbox."""
    if box_type not in BOX_DIMS:
        raise MMRSKDError(f"{where}={box_type!r} is not a box type; use "
                          "'hbox' (x1,y1,x2,y2), 'rbox' (cx,cy,w,h,angle) "
                          "or 'qbox' (8 polygon coordinates)")


def as_box_array(boxes, box_type, where='bboxes'):
    """Convert boxes of any mmdet/mmrotate type to a numpy array of one type.

    Args:
        boxes (BaseBoxes | Tensor | np.ndarray | list): (N, 4), (N, 5) or
            (N, 8) boxes; a plain tensor/array/list is typed by its last
            dimension (4: hbox, 5: rbox, 8: qbox).
        box_type (str): the type to return.
        where (str): what to name in the error message.

    Returns:
        np.ndarray: (N, BOX_DIMS[box_type]) float64 boxes.
    """
    dst_dim = BOX_DIMS[box_type]
    if isinstance(boxes, BaseBoxes):
        src_type = get_box_type(type(boxes))[0]
        boxes = boxes.tensor
    else:
        if not isinstance(boxes, torch.Tensor):
            boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32))
        if boxes.numel() == 0:
            return np.zeros((0, dst_dim), dtype=np.float64)
        if boxes.dim() != 2 or boxes.size(-1) not in _TYPE_OF_DIM:
            raise MMRSKDError(
                f'{where} has shape {tuple(boxes.shape)}; expected (N, 4) '
                'hbox, (N, 5) rbox or (N, 8) qbox boxes')
        src_type = _TYPE_OF_DIM[boxes.size(-1)]
    boxes = boxes.detach().cpu().float()
    if boxes.numel() == 0:
        return np.zeros((0, dst_dim), dtype=np.float64)
    boxes = convert_box_type(boxes, src_type=src_type, dst_type=box_type)
    return boxes.numpy().astype(np.float64).reshape(-1, dst_dim)


def to_box_type(boxes: Union[Tensor, BaseBoxes],
                where: str = 'gt_instances.bboxes') -> BaseBoxes:
    """Wrap a ``(k, 4)`` xyxy, ``(k, 5)`` rbox or ``(k, 8)`` qbox tensor in
    its box type (fp32); box-type inputs are cast to fp32.

    Args:
        boxes (Tensor | BaseBoxes): the boxes.
        where (str): what to name in the error message.

    Returns:
        BaseBoxes: ``HorizontalBoxes``, ``RotatedBoxes`` or ``QuadriBoxes``.
    """
    if isinstance(boxes, BaseBoxes):
        return type(boxes)(boxes.tensor, dtype=torch.float32, clone=False)
    if (isinstance(boxes, Tensor) and boxes.dim() == 2
            and boxes.shape[1] in _TYPE_OF_DIM):
        box_class = get_box_type(_TYPE_OF_DIM[boxes.shape[1]])[1]
        return box_class(boxes, dtype=torch.float32, clone=False)
    shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else None
    raise MMRSKDError(
        f'{where} of type {type(boxes).__name__} and shape {shape} is not a '
        'box set; use (k, 4) xyxy, (k, 5) rbox or (k, 8) qbox tensors or '
        'HorizontalBoxes/RotatedBoxes/QuadriBoxes')
