"""Release a trained student: student-only weights named
``<name>-<sha256[:8]>.pth``, a self-contained plain detector config, the
logs and a metafile entry.

    python tools/publish_model.py work_dirs/pkd_..._dota releases/
    python tools/test.py releases/pkd_..._dota.py \
        releases/pkd_..._dota-1a2b3c4d.pth

SRC is a work dir (its ``last_checkpoint``, or ``--checkpoint best``) or a
checkpoint file; the config is the one mmengine dumped into the work dir
unless ``--config`` names another.
"""
import argparse

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + ' ' +
        __doc__.splitlines()[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('src', help='work dir or checkpoint file')
    parser.add_argument('out_dir', help='release folder')
    parser.add_argument('--config', help='training config (default: the '
                        'one dumped into the work dir)')
    parser.add_argument('--checkpoint', default='last',
                        help='last, best or a checkpoint path (with a work '
                        'dir SRC). Defaults to last')
    parser.add_argument('--name', help='release name (default: the config '
                        'file name without .py)')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='H W for the FLOPs (default: the test pipeline '
                        'Resize scale)')
    parser.add_argument('--weights-url', help='URL prefix of the weights '
                        'in the metafile entry (default: the file name)')
    parser.add_argument('--collection', help='"In Collection" of the '
                        'metafile entry, e.g. PKD')
    parser.add_argument('--metafile', help='also insert the entry into this '
                        'metafile (replacing one of the same Name)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load the checkpoint with weights_only=False '
                        '(only for files you made yourself)')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    import os

    from mmrskd.utils.checkpoint import TRUST_ENV_VAR
    if args.trust_checkpoint:
        os.environ[TRUST_ENV_VAR] = '1'
    shape = None
    if args.shape:
        if len(args.shape) not in (1, 2) or min(args.shape) < 1:
            raise MMRSKDError('--shape: give H W (or one size), e.g. '
                              '--shape 1024 1024')
        shape = tuple(args.shape * (3 - len(args.shape)))[:2]
    register_all_modules(init_default_scope=False)

    from mmrskd.engine.release import publish
    release = publish(args.src, args.out_dir, config=args.config,
                      checkpoint=args.checkpoint, name=args.name,
                      input_shape=shape, weights_url=args.weights_url,
                      collection=args.collection, metafile=args.metafile)
    step_key, step = release['step']
    print(f'weights:  {release["checkpoint"]}')
    print(f'config:   {release["config"]}')
    print(f'metafile: {release["metafile"]}')
    for path in release['logs']:
        print(f'log:      {path}')
    if release['metrics']:
        print(f'metrics at {step_key} {step}: ' + '  '.join(
            f'{k}: {v:.4f}' for k, v in release['metrics'].items()))
    else:
        print(f'warning: no validation logged at {step_key} {step}; the '
              'metafile has no metrics (run tools/test.py on the release and '
              'fill them in)')
    return release


if __name__ == '__main__':
    main()
