"""Shared command-line plumbing of ``tools/train.py`` and ``tools/test.py``."""
import functools
import os
import sys

from mmrskd.utils.checkpoint import TRUST_ENV_VAR
from mmrskd.utils.config import load_config
from mmrskd.utils.errors import MMRSKDError


def exit_on_user_error(main):
    """Print an :class:`MMRSKDError` as one line and exit with status 2,
    instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except MMRSKDError as err:
            print(f'error: {err}', file=sys.stderr)
            sys.exit(2)

    return wrapper


def add_common_args(parser):
    """Arguments both tools take, spelled as in mmdet's tools."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.distill_losses.loss_pkd.'
        'loss_weight=2 or "key=[a,b]"')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher')
    parser.add_argument('--dist-backend', choices=['nccl', 'gloo', 'mpi'],
                        help='torch.distributed backend (default: the '
                        'config\'s env_cfg.dist_cfg.backend)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='load checkpoints with weights_only=False (runs any code '
        'pickled in them): only for files you made yourself')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def apply_common_args(args, cfg, config_path):
    """Apply :func:`add_common_args` arguments to ``cfg`` in place."""
    import os.path as osp
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.trust_checkpoint:
        os.environ[TRUST_ENV_VAR] = '1'
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if args.dist_backend is not None:
        dist_cfg['backend'] = args.dist_backend
    elif dist_cfg.get('backend', 'nccl') == 'nccl':
        import torch
        if not torch.cuda.is_available():
            dist_cfg['backend'] = 'gloo'  # nccl needs GPUs


def load_tool_config(path, cfg_options=None):
    """Load the config a tool was given, with a one-line error if absent,
    and merge its ``--cfg-options`` (a dict, or None)."""
    cfg = load_config(path, where='CONFIG')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
