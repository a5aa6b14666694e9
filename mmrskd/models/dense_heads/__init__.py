from mmrskd.models.dense_heads.gghl_head import GGHLHead
from mmrskd.models.dense_heads.yolov8_head import YOLOv8Head

__all__ = ['GGHLHead', 'YOLOv8Head']
