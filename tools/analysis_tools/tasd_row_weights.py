"""How concentrated TASD's teacher-softmax row weights are, on one training
batch of a distiller config with an ``LTDTASDLoss``.

Example::

    python tools/analysis_tools/tasd_row_weights.py \
        configs/ltd/ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu.py \
        --cfg-options model.teacher_ckpt=TEACHER.pth \
        train_dataloader.dataset.data_root=DATA/ \
        model.distill_losses.loss_tasd.terms.loss_ld.weight_temperature=5

(the shipped configs weight every row alike; 5 is the released value).

For every ``reg`` term with a ``weight_temperature`` and every level, it
prints the region's rows (box sides), their effective number
``(sum w)^2 / sum w^2`` (equal to the row count when every row weighs
alike), the largest weight, and the spread of the summary the weights
come from (the teacher's logits summed over the bins).
"""
import argparse

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner

from mmrskd.models.losses.ltd_tasd_loss import row_weights
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error, load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distiller config with loss_tasd')
    parser.add_argument('--loss', default='loss_tasd',
                        help='the LTDTASDLoss key of distill_losses')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the training dataloader')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides, as in tools/train.py')
    return parser.parse_args(argv)


@exit_on_user_error
@torch.no_grad()
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = load_tool_config(args.config, args.cfg_options)
    model = MODELS.build(cfg.model)
    losses = getattr(model, 'distill_losses', {})
    tasd = losses[args.loss] if args.loss in losses else None
    if not hasattr(tasd, 'regions'):
        raise MMRSKDError(f'{args.config}: model.distill_losses has no '
                          f'LTDTASDLoss "{args.loss}"; pass --loss NAME')
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader,
                                              seed=args.seed)))
    data = model.data_preprocessor(batch, True)
    teacher = model.teacher
    cls_T, reg_T = teacher.bbox_head(teacher.extract_feat(data['inputs']))
    rows = tasd._task_rows(cls_T, cls_T, reg_T, reg_T)
    regions = tasd.regions(
        cls_T, [sample.gt_instances for sample in data['data_samples']],
        [sample.metainfo for sample in data['data_samples']])
    weighted = [term for term, term_cfg in tasd.terms.items()
                if term_cfg['task'] == 'reg'
                and term_cfg['weight_temperature'] is not None]
    if not weighted:
        raise MMRSKDError(
            f'{args.config}: no reg term of {args.loss} has a '
            'weight_temperature (rows unweighted); pass e.g. --cfg-options '
            f'model.distill_losses.{args.loss}.terms.loss_ld.'
            'weight_temperature=5 (the released value)')
    bins = tasd.reg_max + 1
    for term in weighted:
        term_cfg = tasd.terms[term]
        for level, (level_rows, mask) in enumerate(
                zip(rows['reg'][1], regions[term_cfg['region']])):
            sides = level_rows[mask].reshape(-1, bins)
            if not len(sides):
                continue
            weights = row_weights(sides, 'reg',
                                  term_cfg['weight_temperature'])
            summary = sides.sum(1)
            print(f'{term} level {level}: {len(sides)} rows, effective '
                  f'{float(weights.sum()**2 / weights.pow(2).sum()):.1f}, '
                  f'largest weight {float(weights.max()):.1f}, summed-logit '
                  f'spread {float(summary.max() - summary.min()):.1f}')


if __name__ == '__main__':
    main()
