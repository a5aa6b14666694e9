"""Regenerate the results tables of the READMEs from sweep outputs.

    python tools/gen_results_tables.py work_dirs/sweeps/pkd \
        work_dirs/sweeps/students [--readme README.md configs/pkd/README.md]

Reads each sweep's ``sweep.json`` and the runs' logs (never typed numbers),
and writes teacher / student / distilled metric, gain, params, FLOPs and KD
training overhead between ``<!-- results:start -->`` and
``<!-- results:end -->``. Without ``--readme`` every ``README.md`` of the
repository root and of ``configs/*/`` that has the markers is updated; a
README gets the rows of the configs in its folder or below.
``--model-index`` also rewrites ``model-index.yml`` from
``configs/*/metafile.yml``. ``--kd-gain benchmarks/results/kd_gain.json
benchmarks/results/kd_gain_tune.json`` writes the paired-gain tables of
``benchmarks/kd_gain.py``: the held-out seeds' between ``<!-- kd-gain:start
-->`` and ``<!-- kd-gain:end -->``, the tuning seeds' between ``<!--
kd-gain-tune:start -->`` and ``<!-- kd-gain-tune:end -->``.
"""
import argparse
import os.path as osp
import sys

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import exit_on_user_error

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('sweep_dirs', nargs='*', metavar='SWEEP_DIR',
                        help='work dirs of tools/sweep.py')
    parser.add_argument('--readme', nargs='+',
                        help='README files to update (default: those with '
                        'the markers in the repository root and configs/*/)')
    parser.add_argument('--metric', help='metric key or name (default: '
                        'each sweep\'s, or the first */mAP logged)')
    parser.add_argument('--digits', type=int, default=1,
                        help='decimals of the ×100 metrics. Defaults to 1')
    parser.add_argument('--out', help='also write the full table to this '
                        'Markdown file')
    parser.add_argument('--kd-gain', metavar='JSON', nargs='+',
                        help='also write the paired-gain tables of '
                        'benchmarks/kd_gain.py\'s JSONs: the held-out '
                        'split\'s between <!-- kd-gain:start --> and <!-- '
                        'kd-gain:end -->, the tuning split\'s between <!-- '
                        'kd-gain-tune:start --> and <!-- kd-gain-tune:end '
                        '--> (each method README gets its own pairs)')
    parser.add_argument('--model-index', action='store_true',
                        help='rewrite model-index.yml from the metafiles')
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 if a file is outdated')
    return parser.parse_args(argv)


def report(changed, check):
    """Print whether each file changed; the outdated ones."""
    for path, was_changed in changed.items():
        print(f'{path}: {"outdated" if check else "updated"}'
              if was_changed else f'{path}: up to date')
    return [p for p, c in changed.items() if c]


def write_kd_gain_tables(path, readmes, check):
    """The kd-gain blocks of the JSON's split in ``readmes`` (default:
    every README with that split's markers) from ``path``; returns the
    outdated ones."""
    import json

    from mmrskd.engine.sweep.tables import (find_readmes, kd_gain_markers,
                                            update_kd_gain_readmes)
    if not osp.isfile(path):
        raise MMRSKDError(f'--kd-gain {path}: file not found; run '
                          'python benchmarks/kd_gain.py first')
    with open(path) as f:
        record = json.load(f)
    start, _ = kd_gain_markers(record['split'])
    return report(update_kd_gain_readmes(
        record, readmes or find_readmes(REPO, start),
        osp.relpath(path, REPO), check=check), check)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    from mmrskd.engine.release import write_model_index
    from mmrskd.engine.sweep.tables import (benchmark_rows, find_readmes,
                                            load_sweeps, readme_block,
                                            render_table, rewrite_readmes)
    if not args.sweep_dirs and not args.model_index and not args.kd_gain:
        raise MMRSKDError('give the work dirs of tools/sweep.py (and/or '
                          '--kd-gain, --model-index)')
    outdated = []
    if args.sweep_dirs:
        register_all_modules(init_default_scope=False)
        results = load_sweeps(args.sweep_dirs, args.metric)
        rows = benchmark_rows(results)
        print(f'{len(rows)} distillation settings from {len(results)} runs')
        if args.out:
            with open(args.out, 'w') as f:
                f.write(render_table(rows, osp.dirname(
                    osp.abspath(args.out)), args.digits))
            print(f'table: {args.out}')
        readmes = args.readme if args.readme is not None else \
            find_readmes(REPO)
        for path in readmes:
            if not osp.isfile(path):
                raise MMRSKDError(f'--readme {path}: file not found')
        outdated += report(rewrite_readmes(readmes, lambda readme: (
            readme_block(rows, readme, args.sweep_dirs, args.digits)),
            check=args.check), args.check)
    for path in args.kd_gain or ():
        outdated += write_kd_gain_tables(path, args.readme, args.check)
    if args.model_index:
        outdated += report({'model-index.yml': write_model_index(
            REPO, check=args.check)}, args.check)
    return 1 if args.check and outdated else 0


if __name__ == '__main__':
    sys.exit(main())
