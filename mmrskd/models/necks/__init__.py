from mmrskd.models.necks.csa_drf_fpn import CSADRFFPN
from mmrskd.models.necks.gghl_neck import GGHLNeck
from mmrskd.models.necks.yolov8_pafpn import YOLOv8PAFPN

__all__ = ['CSADRFFPN', 'GGHLNeck', 'YOLOv8PAFPN']
