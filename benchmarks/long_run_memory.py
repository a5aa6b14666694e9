"""Memory flatness of a long CPU distillation run.

Trains a tiny Rotated RetinaNet pair on synthetic DOTA images for
``--iters`` iterations (default 2,000) with a feature loss (PKD on the FPN
through a connector), a head-level loss (LogitKD on the classification
outputs, weighted by the adaptive ADMD schedule) and atomic iteration
checkpoints, as a real run does. Records the resident set size (RSS) every
``--every`` iterations and checks that every loss of every iteration is
finite. Prints the first and last RSS and the least-squares slope of RSS
over the iterations after ``--warmup`` (allocator and caches fill during
the first ones), in MB per 1,000 iterations. Exits with status 1 if a loss
was not finite.

Example::

    OMP_NUM_THREADS=1 python benchmarks/long_run_memory.py --iters 2000 \
        --out work_dirs/long_run_memory.json
"""
import argparse
import json
import math
import os
import os.path as osp
import resource
import tempfile
import time

import numpy as np

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmrskd.datasets.synthetic import generate
from mmrskd.testing import tiny_rotated_retinanet_cfg
from mmrskd.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = ('plane', 'ship', 'storage-tank', 'tennis-court', 'small-vehicle')
PAGE_MB = os.sysconf('SC_PAGE_SIZE') / 2**20


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=2000)
    parser.add_argument('--every', type=int, default=20,
                        help='record RSS every N iterations')
    parser.add_argument('--warmup', type=int, default=200,
                        help='iterations left out of the slope')
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--work-dir', help='default: a temporary folder')
    parser.add_argument('--out', help='write the RSS samples as JSON')
    args = parser.parse_args()
    if args.warmup >= args.iters:
        parser.error('--warmup must be smaller than --iters')
    return args


def rss_mb():
    """Current resident set size of this process, in MB."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE_MB


class MemoryRecorder(Hook):
    """Record RSS every ``every`` iterations and count non-finite losses."""

    priority = 'LOWEST'

    def __init__(self, every):
        self.every = every
        self.samples = []  # (iteration, RSS in MB)
        self.non_finite = []  # (iteration, loss name, value)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        for name, value in (outputs or {}).items():
            value = float(value)
            if not math.isfinite(value):
                self.non_finite.append((runner.iter + 1, name, value))
        if (runner.iter + 1) % self.every == 0:
            self.samples.append((runner.iter + 1, rss_mb()))


def distill_config(data_root, work_dir, args):
    num_train = len(os.listdir(osp.join(data_root, 'train', 'labelTxt')))
    iters_per_epoch = num_train // args.batch_size
    student = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16,
                                         num_classes=len(CLASSES)).to_dict()
    teacher = tiny_rotated_retinanet_cfg(base_channels=16, fpn_channels=32,
                                         num_classes=len(CLASSES)).to_dict()
    size = args.img_size
    return Config.fromstring(f"""
_base_ = ['{REPO}/configs/_base_/datasets/synthetic_dota.py',
          '{REPO}/configs/_base_/default_runtime.py']
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType', box_type_mapping=dict(
        gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs')]
train_dataloader = dict(batch_size={args.batch_size}, dataset=dict(
    data_root='{data_root}/', ann_file='train/labelTxt/',
    pipeline=train_pipeline, filter_cfg=dict(filter_empty_gt=False)))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs={math.ceil(args.iters / iters_per_epoch)})
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.002, momentum=0.9,
                                    weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                    interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
work_dir = '{work_dir}'
model = dict(
    type='SingleTeacherDistiller',
    student={student!r},
    teacher={teacher!r},
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck',
              s_head='student.bbox_head', t_head='teacher.bbox_head'),
    connectors=dict(adapt=dict(type='MultiLevelConnector', num_levels=5,
        connector=dict(type='ConvBNConnector', in_channels=16,
                       out_channels=32))),
    distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', loss_weight=1.0),
        loss_logit=dict(type='LogitKDLoss', mode='sigmoid', T=2.0)),
    loss_mappings=dict(
        loss_pkd=dict(preds_S=dict(source='s_fpn', connector='adapt'),
                      preds_T='t_fpn'),
        loss_logit=dict(preds_S='s_head[0]', preds_T='t_head[0]')),
    loss_schedules=dict(loss_logit=dict(type='ADMDAdaptiveWeight',
                                        warmup_iters=50)))
""", file_format='.py')


def slope_per_1000(samples, warmup):
    """Least-squares slope of RSS over iterations after ``warmup``."""
    points = np.array([s for s in samples if s[0] > warmup], dtype=float)
    if len(points) < 2:
        return float('nan')
    return float(np.polyfit(points[:, 0], points[:, 1], 1)[0] * 1000)


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)
    with tempfile.TemporaryDirectory() as tmp:
        data_root = osp.join(tmp, 'data')
        generate('dota', data_root, args.num_images + 2, seed=1,
                 img_size=args.img_size)
        work_dir = args.work_dir or osp.join(tmp, 'work')
        cfg = distill_config(data_root, work_dir, args)
        runner = Runner.from_cfg(cfg)
        recorder = MemoryRecorder(args.every)
        runner.register_hook(recorder)
        start = time.time()
        runner.train()
        elapsed = time.time() - start

    samples = recorder.samples
    slope = slope_per_1000(samples, args.warmup)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'iterations: {runner.iter}  time: {elapsed:.0f} s '
          f'({elapsed / max(runner.iter, 1):.3f} s/iter)')
    print(f'RSS first: {samples[0][1]:.1f} MB (iteration {samples[0][0]})  '
          f'last: {samples[-1][1]:.1f} MB (iteration {samples[-1][0]})  '
          f'peak: {peak_mb:.1f} MB')
    print(f'RSS slope after iteration {args.warmup}: {slope:+.2f} MB per '
          '1,000 iterations')
    print(f'non-finite losses: {len(recorder.non_finite)}'
          + (f' (first: {recorder.non_finite[0]})'
             if recorder.non_finite else ''))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(samples=samples, slope_mb_per_1000=slope,
                           non_finite=recorder.non_finite,
                           seconds=elapsed), f)
    return 1 if recorder.non_finite else 0


if __name__ == '__main__':
    raise SystemExit(main())
