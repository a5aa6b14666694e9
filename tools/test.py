"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``.

Works with detector configs and distiller configs (the student is
evaluated), and with plain student checkpoints released by
``tools/publish_model.py``.
"""
import argparse

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import register_all_modules
from mmrskd.utils.cli import (add_common_args, apply_common_args,
                              exit_on_user_error, load_tool_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    add_common_args(parser)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = load_tool_config(args.config)
    apply_common_args(args, cfg, args.config)
    cfg.load_from = args.checkpoint

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    if args.out is not None:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    main()
