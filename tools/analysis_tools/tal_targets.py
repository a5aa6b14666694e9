"""Per class, how much positive signal YOLOv8's task-aligned assignment
gives the objects of a few training batches.

Example (why chimney scores 0 AP on the CSAKD pair, configs/csakd/README.md;
the data as that config's header makes it)::

    python tools/analysis_tools/tal_targets.py \
        configs/csakd/yolov8_s_1xb8-12e_synthetic-dior20.py \
        --checkpoint TEACHER.pth --num-batches 4

CONFIG is a detector with a ``BatchTaskAlignedAssigner`` (for a distiller,
pass its student's config). For every class it prints the objects seen, the
positive points per object, the object's soft class target (the largest
over its positives, 0 where it has none) and the share of objects whose
target is below ``--min-target``. Such objects teach their class nothing:
the target is ``s**alpha * IoU**beta`` renormalised, so predicted boxes far
off the object (IoU 0.02 gives 0.02**6 = 6e-11) leave it at 0 even where
points are assigned.
"""
import argparse
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner, load_checkpoint, set_random_seed
from torch import Tensor

from mmrskd.models.task_modules import BatchTaskAlignedAssigner
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error, load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a detector config whose head uses '
                        'BatchTaskAlignedAssigner (e.g. YOLOv8)')
    parser.add_argument('--checkpoint', help='weights to assign with '
                        '(default: the initialisation)')
    parser.add_argument('--num-batches', type=int, default=4,
                        help='training batches to read. Defaults to 4')
    parser.add_argument('--min-target', type=float, default=0.01,
                        help='a target below this counts as no signal. '
                        'Defaults to 0.01')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the batches and their augmentation')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides, as in tools/train.py')
    return parser.parse_args(argv)


def object_targets(assigned: Dict[str, Tensor], gt_labels: Tensor,
                   gt_valid: Tensor) -> List[Tuple[int, int, float]]:
    """One ``(class, positive points, soft target)`` per valid object.

    Args:
        assigned (dict): :meth:`BatchTaskAlignedAssigner.assign`'s output:
            ``fg_mask`` [B, N], ``gt_inds`` [B, N], ``scores`` [B, N, C].
        gt_labels (Tensor): [B, M] class of each object.
        gt_valid (Tensor): [B, M] bool, False for padding.
    """
    fg_mask, gt_inds = assigned['fg_mask'], assigned['gt_inds']
    point_targets = assigned['scores'].amax(-1)  # one class is non-zero
    objects = []
    for image, index in gt_valid.nonzero().tolist():
        mine = fg_mask[image] & (gt_inds[image] == index)
        target = float(point_targets[image][mine].max()) if mine.any() \
            else 0.0
        objects.append((int(gt_labels[image, index]), int(mine.sum()),
                        target))
    return objects


def class_lines(objects: Sequence[Tuple[int, int, float]],
                classes: Sequence[str], min_target: float) -> List[str]:
    """The table of :func:`object_targets`' rows, one line per class."""
    by_class = defaultdict(list)
    for label, positives, target in objects:
        by_class[label].append((positives, target))
    width = max(len(name) for name in classes)
    lines = [f'{"class":<{width}}  objects  positives/object  target  '
             f'share < {min_target:g}']
    for label, name in enumerate(classes):
        rows = by_class.get(label)
        if not rows:
            lines.append(f'{name:<{width}}  0')
            continue
        count = len(rows)
        lines.append(
            f'{name:<{width}}  {count:>7}  '
            f'{sum(p for p, _ in rows) / count:>16.1f}  '
            f'{sum(t for _, t in rows) / count:>6.3f}  '
            f'{sum(t < min_target for _, t in rows) / count:>10.2f}')
    return lines


@exit_on_user_error
@torch.no_grad()
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = load_tool_config(args.config, args.cfg_options)
    model = MODELS.build(cfg.model)
    head = getattr(model, 'bbox_head', None)
    if not isinstance(getattr(head, 'assigner', None),
                      BatchTaskAlignedAssigner):
        raise MMRSKDError(f'{args.config}: model.bbox_head has no '
                          'BatchTaskAlignedAssigner (for a distiller, pass '
                          'its student\'s config)')
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.train()  # the assignment sees the predictions of training

    objects = []
    assign = head.assigner.assign

    def recording_assign(pred_bboxes, pred_scores, points, gt_labels,
                         gt_bboxes, gt_valid):
        assigned = assign(pred_bboxes, pred_scores, points, gt_labels,
                          gt_bboxes, gt_valid)
        objects.extend(object_targets(assigned, gt_labels, gt_valid))
        return assigned

    head.assigner.assign = recording_assign
    set_random_seed(args.seed)  # mosaic draws from the global generators
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=args.seed)
    for _, batch in zip(range(args.num_batches), loader):
        data = model.data_preprocessor(batch, True)
        model.loss(data['inputs'], data['data_samples'])
    classes = loader.dataset.metainfo['classes']
    print('\n'.join(class_lines(objects, classes, args.min_target)))


if __name__ == '__main__':
    main()
