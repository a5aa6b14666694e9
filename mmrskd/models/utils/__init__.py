from mmrskd.models.utils.gt_masks import (boxes_to_cell_masks, featmap_stride,
                                          rasterize_gt_boxes)

__all__ = ['boxes_to_cell_masks', 'featmap_stride', 'rasterize_gt_boxes']
