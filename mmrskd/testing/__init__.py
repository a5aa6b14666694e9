"""Tiny detectors and batches for tests and examples (CPU, no weights)."""
from mmrskd.testing.tiny_detectors import (demo_batch, tiny_fcos_cfg,
                                           tiny_gfl_cfg, tiny_retinanet_cfg,
                                           tiny_rotated_retinanet_cfg,
                                           trains_on_rotated_boxes)

__all__ = [
    'demo_batch', 'tiny_fcos_cfg', 'tiny_gfl_cfg', 'tiny_retinanet_cfg',
    'tiny_rotated_retinanet_cfg', 'trains_on_rotated_boxes'
]
