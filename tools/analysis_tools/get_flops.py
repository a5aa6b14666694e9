"""Parameters and FLOPs of a detector: ``python tools/analysis_tools/
get_flops.py CONFIG [--shape H W]``.

Works for mmdet, mmrotate and mmrskd detector configs. For a distiller config
the student is measured (the teacher is not deployed). The model runs its
``tensor`` forward (backbone, neck, head; no post-processing) on one blank
image passed through the model's data preprocessor, so the input is padded
as in testing.

FLOPs are counted by mmengine's ``get_model_complexity_info`` (fvcore
rules): one multiply-add counts as one FLOP, element-wise activations and
pooling are not counted. Papers that quote "GFLOPs" from thop/ultralytics
count twice that; both figures are printed.
"""
import argparse

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error, load_tool_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Count the parameters and FLOPs of a detector')
    parser.add_argument('config', help='config file (detector or distiller)')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[640, 640],
        help='input height and width (one value: square); padded to the '
        "preprocessor's size divisor. Defaults to 640 640")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.bbox_head.num_classes=80')
    parser.add_argument('--show-table', action='store_true',
                        help='print the per-module table')
    return parser.parse_args(argv)


def input_shape(shape):
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise MMRSKDError(f'--shape {" ".join(map(str, shape))}: give H W '
                          '(or one size for a square input), e.g. --shape '
                          '800 800')
    return (shape[0], shape[0]) if len(shape) == 1 else tuple(shape)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    height, width = input_shape(args.shape)
    register_all_modules(init_default_scope=False)
    cfg = load_tool_config(args.config, args.cfg_options)

    from mmengine.registry import init_default_scope

    from mmrskd.models.utils.complexity import (deployed_model_cfg,
                                                model_complexity)
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    model_cfg = deployed_model_cfg(cfg)
    which = 'model.student (the distiller\'s student)' \
        if 'student' in cfg.model else 'model'
    result = model_complexity(model_cfg, (height, width),
                              show_table=args.show_table)

    padded = result['input_shape']
    print(f'config: {args.config} [{which}]')
    print(f'input shape: {(height, width)} -> {padded} after padding')
    print(f'params: {result["params"] / 1e6:.3f} M')
    print(f'FLOPs (1 multiply-add = 1 FLOP): {result["flops"] / 1e9:.3f} G')
    print(f'GFLOPs as thop/ultralytics count them: '
          f'{2 * result["flops"] / 1e9:.3f} G')
    if args.show_table:
        print(result['table'])
    return result


if __name__ == '__main__':
    main()
