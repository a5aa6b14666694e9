"""Train a grid of configs × ``--cfg-options`` and tabulate the results.

    # a sweep file (YAML or Python; see docs/sweeps.md)
    python tools/sweep.py sweeps/pkd_weight.yml
    # or the grid on the command line
    python tools/sweep.py configs/demo/pkd_..._synthetic-dota.py \
        --grid model.distill_losses.loss_pkd.loss_weight=1,2 \
        randomness.seed=0,1 --work-dir work_dirs/sweeps/pkd

Each run trains with ``tools/train.py`` in its own process and work dir
(``<work-dir>/<config stem>/<axis>=<value>,...``), one after the other, or
through ``torch.distributed.run``/``srun`` with ``--launcher``. Calling it
again skips finished runs and resumes interrupted ones. The results (final
and best metric of every run) go to ``<work-dir>/results.{csv,md,png}``.
"""
import argparse
import shlex
import sys

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.cli import exit_on_user_error


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Train a grid of configs × overrides and collect the '
        'results', formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument(
        'inputs', nargs='+', metavar='SWEEP_OR_CONFIG',
        help='sweep files (.yml/.yaml, or .py/.json with configs/'
        'experiments), or training configs swept over --grid')
    parser.add_argument(
        '--grid', nargs='+', action=DictAction, default={},
        help='axes for the configs given on the command line: '
        'KEY=V1,V2 (list values: KEY="[1,2],[3,4]")')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides for every run given on the command line, as in '
        'tools/train.py')
    parser.add_argument(
        '--work-dir', help='the sweep\'s work dir (default: the sweep '
        'file\'s work_dir, or work_dirs/sweeps/<stem of the first input>)')
    parser.add_argument(
        '--metric', help='the metric to report, e.g. dota/mAP or mAP '
        '(default: the sweep file\'s, or the first */mAP logged)')
    parser.add_argument('--only', nargs='+', metavar='PATTERN',
                        help='train only runs whose name matches one of '
                        'these shell patterns, e.g. "pkd*/seed=0*"')
    parser.add_argument('--force', action='store_true',
                        help='retrain the selected runs from scratch (old '
                        'work dirs are renamed, not deleted)')
    parser.add_argument('--dry-run', action='store_true',
                        help='list the runs, their status and command')
    parser.add_argument('--collect', action='store_true',
                        help='only rewrite the results from the logs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='how each run is started')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes per run (pytorch, slurm)')
    parser.add_argument('--gpus-per-node', type=int,
                        help='slurm: GPUs per node (default min(gpus, 8))')
    parser.add_argument('--cpus-per-task', type=int, default=5,
                        help='slurm: CPUs per task')
    parser.add_argument('--partition', help='slurm partition')
    parser.add_argument('--srun-args', default='',
                        help='slurm: extra srun arguments, e.g. '
                        '"--quotatype=auto"')
    parser.add_argument('--port', type=int, default=29500,
                        help='pytorch: master port')
    parser.add_argument('--train-args', default='',
                        help='extra tools/train.py arguments for every run, '
                        'e.g. "--amp"')
    return parser.parse_args(argv)


def build_sweep(args):
    """One sweep from the sweep files and the configs given on the command
    line."""
    import os.path as osp

    from mmrskd.engine.sweep import (Sweep, config_stem, expand_grid,
                                     is_sweep_file, load_sweep_file)
    files = [p for p in args.inputs if is_sweep_file(p)]
    configs = [p for p in args.inputs if p not in files]
    for path in configs:
        if not osp.isfile(path) and '::' not in path:
            raise MMRSKDError(f'config file not found: {osp.abspath(path)}')
    if files and (args.grid or args.cfg_options):
        if not configs:
            raise MMRSKDError('--grid/--cfg-options apply to configs given '
                              'on the command line; put them into the sweep '
                              f'file {files[0]} instead')
    work_dir = args.work_dir
    if work_dir is None and len(files) == 1 and not configs:
        from mmengine.config import Config
        work_dir = Config.fromfile(files[0]).get('work_dir')
    work_dir = work_dir or osp.join('work_dirs', 'sweeps',
                                    config_stem(args.inputs[0]))
    runs, metric = [], args.metric
    for path in files:
        sweep = load_sweep_file(path, work_dir)
        runs += sweep.runs
        metric = metric or sweep.metric
    if configs:
        runs += expand_grid(
            dict(configs=configs, grid=args.grid,
                 cfg_options=args.cfg_options), work_dir,
            where='command line').runs
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MMRSKDError(f'run {duplicates[0]} is given twice; drop one of '
                          'the inputs or give it other axes')
    return Sweep(runs, work_dir, metric)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    import os.path as osp

    from mmrskd.engine.sweep import (LaunchOptions, SweepExecutor,
                                     collect_results, write_results)
    sweep = build_sweep(args)
    options = LaunchOptions(
        launcher=args.launcher, gpus=args.gpus,
        gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
        partition=args.partition, srun_args=args.srun_args,
        master_port=args.port,
        train_script=osp.join(osp.dirname(osp.abspath(__file__)),
                              'train.py'),
        extra_args=shlex.split(args.train_args))

    if not args.collect:
        executor = SweepExecutor(sweep, options, only=args.only,
                                 force=args.force)
        if args.dry_run:
            for row in executor.plan():
                print(f'{row["status"]:<8} {row["name"]}\n'
                      f'         {shlex.join(row["command"])}')
            print(f'{len(executor.runs)} runs in {sweep.work_dir}')
            return 0
        try:
            executor.run()
        except KeyboardInterrupt:
            print('[sweep] interrupted: call the same command again to '
                  'resume', file=sys.stderr)
            return 130

    results = collect_results(sweep.runs, sweep.metric)
    paths = write_results(results, sweep.work_dir)
    print(f'[sweep] results: {paths["csv"]}, {paths["md"]}, {paths["png"]}')
    failed = [r.run.name for r in results if r.status == 'failed']
    if failed:
        print(f'[sweep] failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
