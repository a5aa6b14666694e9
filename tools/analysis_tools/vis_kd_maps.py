"""Draw what each distillation loss of a distiller looks at, per FPN level.

Example::

    python tools/analysis_tools/vis_kd_maps.py CONFIG \
        --checkpoint work_dirs/admd/epoch_12.pth --num-images 4 \
        --out-dir work_dirs/kd_maps

One distillation forward (``distiller.loss``) runs on the first
``--num-images`` images of ``--split``, prepared by the config's val pipeline
(deterministic: no random augmentation) with the annotations loaded before
the resize, so that the ground truth is in input pixels as in training. The
arguments each distillation loss is called with are recorded, and every loss
with a ``kd_maps`` method turns them into its maps (e.g. ADMD's discrepancy
mask, CSAKD's attention, DKED's Gaussian map and DDC responses, LTD's TASD
regions and attention mask). Each map is written to
``<out-dir>/<image stem>/<loss>_<map>_P<level>.png``: normalised to [0, 1]
per image and level, upsampled to the padded input, colour-mapped and
blended over the image, with the ground-truth boxes drawn as polygons. Level
``P<k>`` has stride ``2**k`` (P3 = stride 8). The models run in eval mode
(batch norm with its running statistics) without gradients.

Without ``--teacher-ckpt`` a ``model.teacher_ckpt`` file that does not exist
is replaced by a random teacher (with a warning), as
``--cfg-options model.teacher_ckpt=None`` would do.
"""
import argparse
import logging
import math
import os
import os.path as osp

import cv2
import numpy as np
import torch
from torch import nn

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error, load_tool_config

GT_COLOR = (0, 255, 0)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Draw the maps of the distillation losses over images')
    parser.add_argument('config', help='distiller config file')
    parser.add_argument('--checkpoint',
                        help='distiller training checkpoint (student, '
                        'connectors, losses); default: random weights')
    parser.add_argument('--teacher-ckpt',
                        help='teacher checkpoint, overrides '
                        'model.teacher_ckpt')
    parser.add_argument('--num-images', type=int, default=4,
                        help='images to draw, from the first. Defaults to 4')
    parser.add_argument('--split', default='val', choices=['train', 'val'],
                        help='which <split>_dataloader.dataset the images '
                        'come from. Defaults to val')
    parser.add_argument('--out-dir', default='work_dirs/kd_maps',
                        help='folder for the PNG files')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the maps over the image. Defaults '
                        'to 0.5')
    return parser.parse_args(argv)


def _type_name(transform):
    kind = transform['type']
    return (kind if isinstance(kind, str) else kind.__name__).split('.')[-1]


def dataset_cfg(cfg, split):
    """The ``split`` dataset config with the val pipeline, annotations
    loaded right after the image.

    Val pipelines load the annotations after ``Resize`` (metrics use
    original pixels); the losses need them in input pixels. Wrappers
    (``MultiImageMixDataset``, ``ConcatDataset``, ...) are unwrapped to their
    first image dataset, since their mixing is random augmentation.
    """
    for key in (f'{split}_dataloader', 'val_dataloader'):
        if 'dataset' not in (cfg.get(key) or {}):
            raise MMRSKDError(f'{key}.dataset is not set in the config; the '
                              'tool takes the images of --split through the '
                              'val pipeline')
    pipeline = [dict(t) for t in cfg.val_dataloader.dataset.pipeline]
    loads = [i for i, t in enumerate(pipeline)
             if _type_name(t) == 'LoadAnnotations']
    if not loads:
        raise MMRSKDError('val_dataloader.dataset.pipeline has no '
                          'LoadAnnotations; the losses need the ground truth')
    pipeline.insert(1, pipeline.pop(loads[0]))  # [0] loads the image
    dataset = cfg[f'{split}_dataloader'].dataset
    while 'dataset' in dataset or 'datasets' in dataset:
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    return dict(dataset, pipeline=pipeline)


def build_distiller(cfg, args):
    """The distiller of ``cfg`` with its checkpoints, in eval mode, without
    loss schedules (the maps do not depend on the loss weights, and a zero
    weight, e.g. during a warm-up, would skip the loss)."""
    from mmengine.logging import print_log
    from mmengine.runner import load_checkpoint

    from mmrskd.registry import MODELS
    if 'distill_losses' not in (cfg.get('model') or {}):
        raise MMRSKDError(f'{args.config} is not a distiller config: '
                          'model has no distill_losses')
    if args.teacher_ckpt is not None:
        cfg.model.teacher_ckpt = args.teacher_ckpt
    ckpt = cfg.model.get('teacher_ckpt')
    if ckpt and '://' not in ckpt and not osp.isfile(osp.expanduser(ckpt)):
        if args.teacher_ckpt is not None:
            raise MMRSKDError(f'--teacher-ckpt not found: {osp.abspath(ckpt)}')
        print_log(f'teacher_ckpt {ckpt} not found: drawing with a random '
                  'teacher (pass --teacher-ckpt)', 'current', logging.WARNING)
        cfg.model.teacher_ckpt = None
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise MMRSKDError(f'--checkpoint not found: '
                          f'{osp.abspath(args.checkpoint)}')
    # no init_weights(): the weights come from the checkpoints, and it may
    # download pretrained backbones
    distiller = MODELS.build(cfg.model)
    if args.checkpoint is not None:
        load_checkpoint(distiller, args.checkpoint, map_location='cpu')
    distiller.loss_schedules = nn.ModuleDict()
    return distiller.eval()


@torch.no_grad()
def capture_loss_inputs(distiller, data):
    """Run one distillation forward and record each loss's arguments.

    Args:
        distiller (SingleTeacherDistiller): the model.
        data (dict): collated ``inputs`` and ``data_samples``.

    Returns:
        tuple: the preprocessed data (``inputs`` ``(N, 3, H, W)``,
        ``data_samples``) and ``{loss name: keyword arguments}`` of the
        losses that ran.
    """
    captured = {}

    def recorder(name):
        def record(module, args, kwargs):
            captured[name] = kwargs  # the distiller passes keywords only
        return record

    handles = [
        loss.register_forward_pre_hook(recorder(name), with_kwargs=True)
        for name, loss in distiller.distill_losses.items()
    ]
    try:
        data = distiller.data_preprocessor(data, True)
        distiller.loss(data['inputs'], data['data_samples'])
    finally:
        for handle in handles:
            handle.remove()
    return data, captured


def collect_maps(distiller, captured):
    """``{loss name: {map name: per-level (N, H_l, W_l) fp32 CPU tensors}}``
    of the losses with ``kd_maps``; the others are skipped with a log line.
    """
    from mmengine.logging import print_log
    maps = {}
    for name, loss in distiller.distill_losses.items():
        if not hasattr(loss, 'kd_maps'):
            print_log(f'{name} ({type(loss).__name__}): no kd_maps, skipped',
                      'current')
        elif name not in captured:
            print_log(f'{name}: not called in the forward, skipped',
                      'current')
        else:
            maps[name] = {
                key: [level.float().cpu() for level in levels]
                for key, levels in loss.kd_maps(**captured[name]).items()
            }
    return maps


def input_image(raw, metainfo):
    """The un-normalised input image: ``raw`` ``(3, h, w)`` uint8 (the
    pipeline output) resized to ``img_shape`` (a batch augmentation may have
    rescaled it) and zero-padded to ``batch_input_shape``; ``(H, W, 3)``."""
    img = np.ascontiguousarray(raw.cpu().numpy().transpose(1, 2, 0))
    height, width = metainfo['img_shape'][:2]
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height))
    canvas = np.zeros((*metainfo['batch_input_shape'], 3), np.uint8)
    canvas[:height, :width] = img[:, :, :3]
    return canvas


def overlay(img, level_map, polygons, alpha):
    """Blend a colour-mapped ``(H_l, W_l)`` map over the ``(H, W, 3)`` image
    and draw the ``(K, 8)`` polygons."""
    values = level_map.numpy()
    low, high = values.min(), values.max()
    values = (values - low) / (high - low) if high > low \
        else np.zeros_like(values)
    # nearest: every cell of the level keeps its own value
    values = cv2.resize(values, img.shape[1::-1],
                        interpolation=cv2.INTER_NEAREST)
    heat = cv2.applyColorMap(np.uint8(np.round(255 * values)),
                             cv2.COLORMAP_JET)
    canvas = cv2.addWeighted(img, 1 - alpha, heat, alpha, 0)
    points = [np.round(poly.reshape(4, 2)).astype(np.int32)
              for poly in polygons]
    cv2.polylines(canvas, points, True, GT_COLOR, 1, cv2.LINE_AA)
    return canvas


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.num_images < 1:
        raise MMRSKDError(f'--num-images {args.num_images}: must be at '
                          'least 1')
    if not 0 <= args.alpha <= 1:
        raise MMRSKDError(f'--alpha {args.alpha}: must be in [0, 1]')
    register_all_modules(init_default_scope=False)
    cfg = load_tool_config(args.config, args.cfg_options)

    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmrskd.registry import DATASETS
    from mmrskd.structures import as_box_array
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    distiller = build_distiller(cfg, args)
    if not any(hasattr(loss, 'kd_maps')
               for loss in distiller.distill_losses.values()):
        raise MMRSKDError(
            f'no distillation loss of {args.config} has kd_maps '
            f'({", ".join(distiller.distill_losses)}); nothing to draw')
    if torch.cuda.is_available():
        distiller = distiller.cuda()
    dataset = DATASETS.build(dataset_cfg(cfg, args.split))
    if len(dataset) == 0:
        raise MMRSKDError(f'the {args.split} dataset has no images')
    data = pseudo_collate(
        [dataset[i] for i in range(min(args.num_images, len(dataset)))])
    raw_images = data['inputs']
    data, captured = capture_loss_inputs(distiller, data)
    maps = collect_maps(distiller, captured)

    written = 0
    for index, (raw, sample) in enumerate(zip(raw_images,
                                              data['data_samples'])):
        img = input_image(raw, sample.metainfo)
        polygons = as_box_array(sample.gt_instances.bboxes, 'qbox',
                                'gt bboxes')
        img_path = sample.metainfo.get('img_path')
        stem = osp.splitext(osp.basename(img_path))[0] if img_path \
            else f'img{index}'
        os.makedirs(osp.join(args.out_dir, stem), exist_ok=True)
        for loss_name, loss_maps in maps.items():
            for map_name, levels in loss_maps.items():
                for level_map in levels:
                    level = round(math.log2(img.shape[0] /
                                            level_map.shape[-2]))
                    path = osp.join(args.out_dir, stem,
                                    f'{loss_name}_{map_name}_P{level}.png')
                    cv2.imwrite(path, overlay(img, level_map[index],
                                              polygons, args.alpha))
                    written += 1
    print(f'wrote {written} PNG files to {args.out_dir}')


if __name__ == '__main__':
    main()
