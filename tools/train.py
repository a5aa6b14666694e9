"""Train a detector or a distiller: ``python tools/train.py CONFIG``.

The command line follows mmdet's ``tools/train.py``; multi-GPU and
multi-process CPU runs go through mmengine's launcher
(``tools/dist_train.sh CONFIG NUM_PROCS``).
"""
import argparse

import torch

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import register_all_modules
from mmrskd.utils.cli import (add_common_args, apply_common_args,
                              exit_on_user_error, load_tool_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or a '
                                     'teacher→student distiller')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision: fp16 with loss scaling on GPU, bfloat16 '
        'autocast on CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the actual batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest '
        'checkpoint in the work dir')
    add_common_args(parser)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = load_tool_config(args.config)
    apply_common_args(args, cfg, args.config)

    if args.amp:
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            cfg.optim_wrapper.type = 'CPUBF16OptimWrapper'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            from mmrskd.utils import MMRSKDError
            raise MMRSKDError(f'{args.config}: --auto-scale-lr needs '
                              'auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
