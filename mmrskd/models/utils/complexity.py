"""Parameters and FLOPs of the detector a config deploys (a distiller's
student), counted by mmengine's ``get_model_complexity_info`` on the
``tensor`` forward (backbone, neck, head; no post-processing), one
multiply-add = one FLOP, as ``tools/analysis_tools/get_flops.py`` counts."""
import functools
import logging
from typing import Optional, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm

from mmrskd.models.distillers.single_teacher_distiller import \
    resolve_model_cfg
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


def deployed_model_cfg(cfg):
    """The model config of what is deployed: ``cfg.model``, or the
    distiller's student resolved to a model dict."""
    model = cfg.model
    if 'student' not in model:
        return model
    return resolve_model_cfg(model.student, 'model.student')


def _pipeline(dataset):
    """The pipeline of a dataset config, looking through wrappers."""
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset.get('pipeline', [])


def test_input_shape(cfg) -> Optional[Tuple[int, int]]:
    """``(H, W)`` of the test pipeline's ``Resize`` scale (mmdet writes the
    scale as ``(W, H)``), or None when it has none."""
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader:
        return None
    for transform in _pipeline(loader.get('dataset', {})):
        if str(transform.get('type', '')).split('.')[-1] in (
                'Resize', 'RResize') and transform.get('scale'):
            scale = transform['scale']
            if isinstance(scale, int):
                return scale, scale
            return int(scale[1]), int(scale[0])
    return None


def model_complexity(model_cfg, input_shape: Tuple[int, int],
                     show_table: bool = False) -> dict:
    """Count a detector's parameters and FLOPs on one blank image.

    Args:
        model_cfg (dict | nn.Module): a detector model config (built in the
            current default scope, or its own ``_scope_``), or a built
            detector (counted as it is, e.g. with loaded weights).
        input_shape (tuple[int, int]): ``(H, W)`` before padding.
        show_table (bool): also return mmengine's per-module table.

    Returns:
        dict: ``params`` (int), ``flops`` (int), ``input_shape`` (the
        padded ``(H, W)`` the model saw) and, with ``show_table``, ``table``.
    """
    height, width = input_shape
    if min(height, width) < 1:
        raise MMRSKDError(f'input shape {input_shape}: give H W >= 1')
    model = model_cfg if isinstance(model_cfg, torch.nn.Module) else \
        MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model).eval()
    sample = DetDataSample(metainfo=dict(
        img_shape=(height, width), ori_shape=(height, width),
        scale_factor=(1., 1.)))
    data = model.data_preprocessor(
        dict(inputs=[torch.zeros((3, height, width), dtype=torch.uint8)],
             data_samples=[sample]), False)
    # two-stage detectors need the data samples in their tensor forward (an
    # instance attribute, removed after: a given model is left as it was)
    model.forward = functools.partial(
        model.forward, data_samples=data['data_samples'], mode='tensor')
    # mmengine warns about each op it skips (batch_norm, add, ...); skipping
    # them is the FLOP-count convention, so the warnings are noise here
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            info = get_model_complexity_info(model, inputs=data['inputs'],
                                             show_table=show_table,
                                             show_arch=False)
    finally:
        logger.setLevel(level)
        del model.forward
    result = dict(params=int(info['params']), flops=int(info['flops']),
                  input_shape=tuple(data['inputs'].shape[-2:]))
    if show_table:
        result['table'] = info['out_table']
    return result
