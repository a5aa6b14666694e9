"""Tiny detectors and batches for tests and examples (CPU, no weights)."""
from mmrskd.testing.peak_memory import peak_bytes
from mmrskd.testing.scene_batch import scene_batch
from mmrskd.testing.tiny_detectors import (demo_batch, preprocess_batch,
                                           tiny_fcos_cfg, tiny_gfl_cfg,
                                           tiny_retinanet_cfg,
                                           tiny_rotated_retinanet_cfg,
                                           trains_on_rotated_boxes)

__all__ = [
    'demo_batch', 'peak_bytes', 'preprocess_batch', 'scene_batch',
    'tiny_fcos_cfg', 'tiny_gfl_cfg', 'tiny_retinanet_cfg',
    'tiny_rotated_retinanet_cfg', 'trains_on_rotated_boxes'
]
