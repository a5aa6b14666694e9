"""DIOR-R: the oriented-box annotations of DIOR (see :mod:`.dior`)."""
from mmrskd.datasets.dior import DIORDataset
from mmrskd.registry import DATASETS


@DATASETS.register_module()
class DIORRDataset(DIORDataset):
    """DIOR-R with oriented boxes, 20 classes in DIOR's order.

    ``bbox`` is the 8-value quadrilateral ``x1 y1 ... x4 y4`` read from
    ``<robndbox>`` in the order left-top, right-top, right-bottom,
    left-bottom (clockwise on screen); load it with
    ``dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox')``
    and convert with ``mmrotate.ConvertBoxType``. Arguments are those of
    :class:`DIORDataset`; ``ann_subdir`` defaults to
    ``'Annotations/Oriented Bounding Boxes'``.
    """

    BOX_TYPE = 'qbox'
    DEFAULT_ANN_SUBDIR = 'Annotations/Oriented Bounding Boxes'
