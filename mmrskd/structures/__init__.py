"""Box helpers shared by the datasets, the evaluation and the models."""
from mmrskd.structures.box_arrays import (BOX_DIMS, as_box_array,
                                          check_box_type, to_box_type)
from mmrskd.structures.box_overlaps import (box_iou, polygon_iou,
                                            quadri_polygons)
from mmrskd.structures.hbox_rbox_overlaps import aligned_hbox_rbox_iou

__all__ = [
    'BOX_DIMS', 'as_box_array', 'check_box_type', 'to_box_type', 'box_iou',
    'polygon_iou', 'quadri_polygons', 'aligned_hbox_rbox_iou'
]
