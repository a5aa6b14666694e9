"""Does each paper method distil on its own detector? Paired, seed by seed.

For every pair of ``benchmarks/kd_gain.yml`` (a paper method on its native,
CPU-sized detector pair) this trains, with ``tools/sweep.py``'s engine
(resumable: call it again to continue; a progress bar per run):

* the teacher, once (seed 0);
* per seed of the split: the student alone, the method and the classic
  baseline, all on the student's schedule (a pair's ``cfg_options`` change
  it for every arm alike, ``teacher_cfg_options`` the teacher's). A
  distilled run and the student alone of one seed share the student's init
  and data order (``SingleTeacherDistiller`` builds everything else from a
  forked RNG).

* a pair's ``variants``, only when ``--arms`` names them: ablations of an
  arm (the method's by default), ``{arm: ARM, cfg_options: {...}}``, in
  ``<pair>/<variant>/``, paired with the same student alone like an arm;

and writes ``benchmarks/results/kd_gain.json`` (``kd_gain_tune.json`` for
the tuning seeds, so they never pass for the table): per pair the metric, the
teacher's value, every arm's per-seed values (×100), the student's seed std,
and the paired gain of every arm over the student alone (and of the method
over the baseline): mean, std, standard error, t = mean / se, and whether it
counts as a gain (mean > 0 and t >= 2). The method READMEs' tables are
generated from it by ``tools/gen_results_tables.py --kd-gain``. A pair's
record is rebuilt from its runs in the work dir, so a pair whose recorded
runs are not there (a fresh clone) is refused before anything trains: give
``--out`` a new file to run it here.

    python benchmarks/kd_gain.py --split tune       # seeds 0-4, for tuning
    python benchmarks/kd_gain.py --split heldout    # seeds 100-104: the table
    python benchmarks/kd_gain.py --split heldout --out kd_gain_here.json
    python benchmarks/kd_gain.py --split tune --pairs ltd_gfl_nwpu --dry-run
    python benchmarks/kd_gain.py --split heldout --collect   # only the JSON
    python benchmarks/kd_gain.py --split tune --pairs dked_lodet_dota \
        --arms student dked dked_feature_terms          # a variant too
"""
import argparse
import copy
import dataclasses
import functools
import hashlib
import json
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmrskd  # noqa: E402,F401  (compat layer before anything OpenMMLab)
from mmrskd.engine.sweep.grid import check_option_key  # noqa: E402
from mmrskd.engine.sweep.tables import (  # noqa: E402
    KD_GAIN_REPORTED_SPLIT as REPORTED_SPLIT, format_number)
from mmrskd.evaluation.functional import paired_gain, sample_std  # noqa: E402
from mmrskd.utils import MMRSKDError  # noqa: E402
from mmrskd.utils.checkpoint import atomic_write_bytes  # noqa: E402
from mmrskd.utils.cli import exit_on_user_error  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SPEC = osp.join(REPO, 'benchmarks', 'kd_gain.yml')
RESULTS = osp.join(REPO, 'benchmarks', 'results')
SEED_KEY = 'randomness.seed'
TEACHER_SEED = 0
STUDENT_ARM = 'student'
TEACHER_ARM = 'teacher'
DATA_STAMP = 'kd_gain_data.json'
PAIR_KEYS = ('method', 'data', 'metric', 'teacher', 'student', 'arms')
VARIANT_KEYS = ('arm', 'cfg_options')


@functools.lru_cache(maxsize=None)
def _parsed_config(config):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config))


def repo_config(config):
    """``config`` (a path relative to the repository), parsed once per
    process: a copy, so that callers may merge options into it."""
    return copy.deepcopy(_parsed_config(config))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--spec', default=SPEC, help='the pairs (YAML)')
    parser.add_argument('--split', default='heldout',
                        help='a key of the spec\'s seeds: tune (0-4) or '
                        'heldout (100-104, the reported table). Defaults to '
                        'heldout')
    parser.add_argument('--pairs', nargs='+', help='only these pairs')
    parser.add_argument('--arms', nargs='+',
                        help='train only these arms (and the teachers), e.g. '
                        '"student" to check the seed spread first, '
                        '"teacher" for the teachers alone, or a pair\'s '
                        'variants (ablations, never trained unless named)')
    parser.add_argument('--work-dir', help='default: the spec\'s work_dir')
    parser.add_argument('--out', help='the JSON to write (default: '
                        'benchmarks/results/kd_gain.json for heldout, '
                        'kd_gain_<split>.json for another split)')
    parser.add_argument('--dry-run', action='store_true',
                        help='list the runs and their status')
    parser.add_argument('--collect', action='store_true',
                        help='train nothing; write the JSON from the logs')
    parser.add_argument('--train-args', default='',
                        help='extra tools/train.py arguments, e.g. "--amp"')
    return parser.parse_args(argv)


def load_spec(path):
    """The pairs file, checked: one-line errors that name the key."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise MMRSKDError(f'--spec {osp.abspath(path)}: file not found')
    spec = Config.fromfile(path).to_dict()
    for key in ('seeds', 'pairs'):
        if not isinstance(spec.get(key), dict) or not spec[key]:
            raise MMRSKDError(f'{path}: "{key}" must map names to entries')
    for name, pair in spec['pairs'].items():
        missing = [k for k in PAIR_KEYS if k not in pair]
        if missing:
            raise MMRSKDError(f'{path}: pairs.{name} lacks {missing}')
        data = pair['data']
        if not isinstance(data, dict) or 'format' not in data or not (
                data.get('splits') or data.get('num_images')):
            raise MMRSKDError(f'{path}: pairs.{name}.data needs format and '
                              'splits (e.g. {train: 120, val: 400}) or '
                              'num_images')
        if STUDENT_ARM in pair['arms']:
            raise MMRSKDError(f'{path}: pairs.{name}.arms.{STUDENT_ARM}: '
                              'the student alone is "student:"; rename it')
        if pair['method'] not in pair['arms']:
            raise MMRSKDError(f'{path}: pairs.{name}.method '
                              f'"{pair["method"]}" is not one of its arms '
                              f'{sorted(pair["arms"])}')
        for where, config in [('teacher', pair['teacher']),
                              ('student', pair['student'])] + [
                                  (f'arms.{a}', c)
                                  for a, c in pair['arms'].items()]:
            if not osp.isfile(osp.join(REPO, config)):
                raise MMRSKDError(f'{path}: pairs.{name}.{where}: config '
                                  f'not found: {config}')
        check_variants(path, name, pair)
    return spec


def check_variants(path, name, pair):
    """A pair's ``variants``: ablations of one of its arms (the method by
    default), each ``{arm: ARM, cfg_options: {KEY: VALUE}}`` under a name
    that no arm has."""
    variants = pair.get('variants') or {}
    if not isinstance(variants, dict):
        raise MMRSKDError(f'{path}: pairs.{name}.variants must map names to '
                          '{cfg_options: {KEY: VALUE}}')
    for variant, entry in variants.items():
        at = f'{path}: pairs.{name}.variants.{variant}'
        if variant in (STUDENT_ARM, TEACHER_ARM, *pair['arms']):
            raise MMRSKDError(f'{at}: "{variant}" is an arm\'s name; '
                              'rename the variant')
        if not isinstance(entry, dict) or set(entry) - set(VARIANT_KEYS) \
                or not isinstance(entry.get('cfg_options'), dict):
            raise MMRSKDError(f'{at}: expected {{cfg_options: {{KEY: '
                              'VALUE}}}} and optionally arm: one of '
                              f'{sorted(pair["arms"])}')
        arm = entry.get('arm', pair['method'])
        if arm not in pair['arms']:
            raise MMRSKDError(f'{at}.arm: "{arm}" is not one of the '
                              f'arms {sorted(pair["arms"])}')
        config = pair['arms'][arm]
        arm_cfg = _parsed_config(config).to_dict()
        for key in entry['cfg_options']:
            check_option_key(f'{at}.cfg_options', config, arm_cfg, key)


def select_pairs(spec, names):
    pairs = spec['pairs']
    unknown = sorted(set(names or []) - set(pairs))
    if unknown:
        raise MMRSKDError(f'--pairs {unknown[0]}: not in the spec; known: '
                          f'{sorted(pairs)}')
    return {n: p for n, p in pairs.items() if not names or n in names}


def split_seeds(spec, split):
    if split not in spec['seeds']:
        raise MMRSKDError(f'--split {split}: the spec has '
                          f'{sorted(spec["seeds"])}')
    return list(spec['seeds'][split])


def teacher_checkpoint(teacher_run):
    """Where the teacher run leaves its last epoch's checkpoint."""
    cfg = repo_config(teacher_run.config)
    cfg.merge_from_dict(teacher_run.cfg_options)
    return osp.join(teacher_run.work_dir,
                    f'epoch_{cfg.train_cfg.max_epochs}.pth')


def plain(value):
    """A config node as plain Python (ConfigDict to dict)."""
    return value.to_dict() if hasattr(value, 'to_dict') else value


def evaluator_options(config, options, reference, where):
    """``cfg_options`` that make ``config`` (with ``options``) evaluate like
    ``reference``, the student alone's ``val_evaluator`` and
    ``test_evaluator``: a metric key such as ``rsdet/mAP50`` means another
    number under another evaluator (VOC 11-point at IoU 0.5, or the 101-point
    COCO curve of ``iou_thrs='coco'``), and a paired gain must compare the
    same one."""
    cfg = repo_config(config)
    cfg.merge_from_dict(options)
    aligned = {}
    for key, wanted in reference.items():
        have = plain(cfg.get(key))
        if have == wanted:
            continue
        if not isinstance(have, dict) or set(have) - set(wanted):
            raise MMRSKDError(
                f'{where}: {config} has {key}={have}, the student alone '
                f'{wanted}; give the pair cfg_options that make them equal')
        aligned.update({f'{key}.{k}': v for k, v in wanted.items()
                        if have.get(k) != v})
    return aligned


def pair_runs(name, pair, seeds, work_dir):
    """The teacher run and the arms' runs of one pair, seed-major, so that an
    interrupted benchmark has whole seeds.

    Returns:
        tuple[SweepRun, dict[str, dict[int, SweepRun]]]: the teacher run and
        ``{arm: {seed: run}}`` with the student alone as ``'student'`` and
        each variant under its name.
    """
    from mmrskd.engine.sweep import expand_grid
    root = osp.join(work_dir, name)
    data = data_root(pair, work_dir)
    classes = data_classes(data_spec(pair))

    def named(run):
        return dataclasses.replace(run, name=f'{name}/{run.name}')

    student_cfg = repo_config(pair['student'])
    student_cfg.merge_from_dict(pair.get('cfg_options', {}))
    reference = {key: plain(student_cfg.get(key))
                 for key in ('val_evaluator', 'test_evaluator')
                 if key in student_cfg}

    def aligned(config, options, where):
        return {**options, **evaluator_options(config, options, reference,
                                               where)}

    teacher_options = pair.get('teacher_cfg_options', {})
    at = f'pairs.{name}.teacher'
    teacher = named(expand_grid(
        dict(configs=[pair['teacher']], grid={SEED_KEY: [TEACHER_SEED]},
             cfg_options={**data_root_options(pair['teacher'], data, classes,
                                              at),
                          **aligned(pair['teacher'], teacher_options, at)}),
        root, where=at).runs[0])

    def seed_runs(config, options, run_root, where, prefix=name):
        options = {**data_root_options(config, data, classes, where),
                   **aligned(config, {**pair.get('cfg_options', {}),
                                      **options}, where)}
        runs = expand_grid(dict(configs=[config], grid={SEED_KEY: seeds},
                                cfg_options=options), run_root,
                           where=where).runs
        return {run.cfg_options[SEED_KEY]: dataclasses.replace(
            run, name=f'{prefix}/{run.name}') for run in runs}

    distilled = {'model.teacher_ckpt': teacher_checkpoint(teacher)}
    arms = {STUDENT_ARM: seed_runs(pair['student'], {}, root,
                                   f'pairs.{name}.{STUDENT_ARM}')}
    for arm, config in pair['arms'].items():
        arms[arm] = seed_runs(config, distilled, root, f'pairs.{name}.{arm}')
    for variant, entry in (pair.get('variants') or {}).items():
        arms[variant] = seed_runs(
            pair['arms'][entry.get('arm', pair['method'])],
            {**distilled, **entry['cfg_options']}, osp.join(root, variant),
            f'pairs.{name}.variants.{variant}', prefix=f'{name}/{variant}')
    return teacher, arms


def select_arms(arms, names, variants=()):
    """The arms to train: those named, else all but the ``variants``
    (ablations run only when named)."""
    if names:
        return {a: runs for a, runs in arms.items() if a in names}
    return {a: runs for a, runs in arms.items() if a not in variants}


def ordered_runs(teacher, arms, seeds):
    order = sorted(arms, key=lambda a: a != STUDENT_ARM)
    return [teacher] + [arms[a][s] for s in seeds for a in order]


def data_spec(pair):
    """What a pair's synthetic set is: ``dict(format, splits, num_images)``,
    and ``classes`` when the pair names them. ``data.splits`` sizes each
    split (e.g. a large val split, so that evaluation noise does not hide a
    gain); ``data.num_images`` alone keeps the format's fractions
    (``splits`` then empty). ``data.classes`` is a list of the format's
    class names or ``all``; without it the generator's default subset."""
    data = pair['data']
    splits = dict(data.get('splits') or {})
    spec = dict(format=data['format'], splits=splits,
                num_images=sum(splits.values()) or int(data['num_images']))
    if data.get('classes') is not None:
        spec['classes'] = data['classes'] if isinstance(
            data['classes'], str) else list(data['classes'])
    return spec


def data_classes(spec):
    """The class names the pair's synthetic set is drawn with."""
    from mmrskd.datasets.synthetic import resolve_classes
    return resolve_classes(spec['format'], spec.get('classes'))


def data_root(pair, work_dir):
    """Where the pair's synthetic set lives: one folder per data spec, so
    that pairs with the same spec share it and no other set is reused."""
    spec = data_spec(pair)
    sizes = '_'.join(f'{name}{count}'
                     for name, count in spec['splits'].items())
    kind = spec['format']
    if 'classes' in spec:
        classes = data_classes(spec)
        kind += f'{len(classes)}cls-' + hashlib.sha1(
            ','.join(classes).encode()).hexdigest()[:8]
    return osp.join(work_dir, 'data', f'{kind}_{sizes or spec["num_images"]}')


def ensure_data(pair, root):
    """Generate the pair's synthetic set (in the real on-disk format) when
    it is missing; a set written for another spec is refused."""
    from mmrskd.datasets.synthetic import generate
    spec = data_spec(pair)
    stamp = osp.join(root, DATA_STAMP)
    if osp.isfile(stamp):
        with open(stamp) as f:
            written = json.load(f)
        if written != spec:
            raise MMRSKDError(f'{stamp}: written for {written}, the spec asks '
                              f'for {spec}; delete {root} to regenerate it')
        return
    generate(spec['format'], root, spec['num_images'],
             classes=data_classes(spec),
             split_sizes=spec['splits'] or None, overwrite=True)
    atomic_write_bytes(json.dumps(spec).encode(), stamp)


def data_root_options(config, root, classes=None, where=None):
    """``--cfg-options`` that point every dataset of ``config`` (train, val
    and test, wrapped ones included) at ``root``; with ``classes`` (the
    set's, :func:`data_classes`), each of those datasets must have the same
    classes, or a config for other classes would train on part of the set.

    Returns:
        dict[str, str]: e.g. ``{'train_dataloader.dataset.datasets.0.
        data_root': root + '/', ...}``.
    """
    cfg = _parsed_config(config)  # only read
    options = {}

    def visit(node, key):
        if isinstance(node, dict):
            if 'data_root' in node:
                options[f'{key}.data_root'] = osp.join(root, '')
                if classes is not None:
                    check_classes(node, key, classes,
                                  f'{where or config}: {config}')
            for name, child in node.items():
                visit(child, f'{key}.{name}')
        elif isinstance(node, (list, tuple)):
            for index, child in enumerate(node):
                visit(child, f'{key}.{index}')

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        visit(cfg.get(loader, {}).get('dataset'), f'{loader}.dataset')
    if not options:
        raise MMRSKDError(f'{config}: no dataset with a data_root to point '
                          f'at the benchmark\'s data ({root})')
    return options


def check_classes(dataset, key, classes, where):
    """A dataset config's classes (its ``metainfo``, else its type's
    ``METAINFO``) against the synthetic set's, as sets."""
    from mmrskd.registry import DATASETS
    own = (dataset.get('metainfo') or {}).get('classes')
    if own is None:
        dataset_type = DATASETS.get(dataset['type'])
        own = getattr(dataset_type, 'METAINFO', {}).get('classes')
    if own is not None and set(own) != set(classes):
        raise MMRSKDError(
            f'{where}: {key} has {len(own)} classes {tuple(own)}, the pair\'s '
            f'data {len(classes)} {tuple(classes)}; give the pair\'s '
            'data.classes, or use a config for its classes')


def commit():
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO,
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def points(value):
    return None if value is None else round(100.0 * value, 4)


def current_results(runs, metric):
    """``collect_results`` of ``runs``, where a run trained with other
    settings than the spec now gives (a stale config fingerprint, e.g.
    before a change of the pair's options) counts as not run."""
    from mmrskd.engine.sweep import collect_results
    from mmrskd.engine.sweep.executor import STALE, run_status
    from mmrskd.engine.sweep.grid import run_fingerprint
    results = collect_results(runs, metric)
    for result in results:
        if run_status(result.run.work_dir,
                      run_fingerprint(result.run)) == STALE:
            print(f'[kd_gain] {result.run.name}: trained with other '
                  'settings than the spec gives now; left out (train it '
                  'again)', file=sys.stderr)
            result.final = None
    return results


def pair_record(pair, teacher_result, arm_results):
    """One pair's entry of the JSON.

    Args:
        pair (dict): the pair's spec.
        teacher_result (RunResult): the teacher run.
        arm_results (dict[str, dict[int, RunResult]]): every arm's runs by
            seed, the student alone as ``'student'``.
    """
    variants = pair.get('variants') or {}
    values = {arm: {seed: points(r.final) for seed, r in runs.items()
                    if r.final is not None}
              for arm, runs in arm_results.items()}
    # a variant is in the record once it has a run
    values = {arm: vals for arm, vals in values.items()
              if vals or arm not in variants}
    student = values[STUDENT_ARM]
    teacher = points(teacher_result.final)
    student_mean = (sum(student.values()) / len(student)) if student else None
    baselines = [a for a in pair['arms'] if a != pair['method']]
    seconds = [r.train_seconds for runs in arm_results.values()
               for r in runs.values() if r.train_seconds] + [
                   teacher_result.train_seconds or 0.0]
    return dict(
        method=pair['method'],
        dataset=pair['data']['format'],
        data=pair['data'],
        cfg_options=pair.get('cfg_options', {}),
        teacher_cfg_options=pair.get('teacher_cfg_options', {}),
        metric=pair['metric'],
        configs=dict(pair['arms'], teacher=pair['teacher'],
                     **{STUDENT_ARM: pair['student']}),
        variants={v: dict(arm=e.get('arm', pair['method']),
                          cfg_options=e['cfg_options'])
                  for v, e in variants.items() if v in values},
        teacher=teacher,
        arms={arm: {str(s): v for s, v in sorted(vals.items())}
              for arm, vals in values.items()},
        student_std=sample_std(student.values()),
        teacher_margin=(teacher - student_mean
                        if teacher is not None and student_mean is not None
                        else None),
        gains={arm: paired_gain(values[arm], student)
               for arm in values if arm != STUDENT_ARM},
        method_vs_baseline={b: paired_gain(values[pair['method']], values[b])
                            for b in baselines},
        train_seconds=round(sum(seconds), 1))


def previous_record(path, split, seeds):
    """The JSON to update: the pairs of an earlier call on the same split
    and seeds are kept (a ``--pairs`` call replaces only its own pairs);
    anything else starts empty."""
    empty = dict(benchmark='kd_gain', split=split, seeds=list(seeds),
                 commit=None, unit='metric x 100', wall_seconds=None,
                 pairs={})
    if not osp.isfile(path):
        return empty
    with open(path) as f:
        record = json.load(f)
    if record.get('split') != split or record.get('seeds') != list(seeds):
        return empty
    return record


def check_recorded_runs(record, layout, out, work_dir):
    """Refuse to rewrite a pair of ``record`` (the JSON at ``out``) whose
    recorded results have no run in ``work_dir`` (a fresh clone, another
    machine): its record is rebuilt from the runs on disk, and would lose
    them."""
    for name, (teacher, arms) in layout.items():
        recorded = record['pairs'].get(name)
        if not recorded:
            continue
        runs = [(TEACHER_ARM, teacher)] if recorded.get(
            'teacher') is not None else []
        runs += [(arm, arms[arm][int(seed)])
                 for arm, values in recorded['arms'].items() if arm in arms
                 for seed in values if int(seed) in arms[arm]]
        missing = [(arm, run) for arm, run in runs
                   if not osp.isdir(run.work_dir)]
        if missing:
            arm, run = missing[0]
            raise MMRSKDError(
                f'--out {out}: pairs.{name} records {len(missing)} result(s) '
                f'with no run in {work_dir} (first: {arm}, {run.work_dir}); '
                'give --work-dir of the runs that made them, or another '
                '--out for new runs')


def write_json(record, path):
    """Write ``record`` atomically (a reader never sees half a file)."""
    atomic_write_bytes((json.dumps(record, indent=2) + '\n').encode(), path)


def summary_lines(record):
    lines = []
    for name, pair in record['pairs'].items():
        head = (f'{name}: teacher {pair["teacher"]}, student std '
                f'{format_number(pair["student_std"], digits=2)}')
        gains = ', '.join(
            f'{arm} {format_number(g["mean"], sign=True, digits=2)} (t '
            f'{format_number(g["t"], digits=2)}, n {g["n"]})'
            for arm, g in pair['gains'].items())
        lines.append(f'{head}; gains: {gains}')
    return lines


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    from mmrskd.engine.sweep import LaunchOptions, Sweep, SweepExecutor
    spec = load_spec(args.spec)
    seeds = split_seeds(spec, args.split)
    pairs = select_pairs(spec, args.pairs)
    work_dir = args.work_dir or spec.get('work_dir', 'work_dirs/kd_gain')
    layout = {name: pair_runs(name, pair, seeds, work_dir)
              for name, pair in pairs.items()}
    known = {TEACHER_ARM} | {arm for _, arms in layout.values()
                             for arm in arms}
    unknown = sorted(set(args.arms or []) - known)
    if unknown:
        raise MMRSKDError(f'--arms {unknown[0]}: no such arm; known: '
                          f'{sorted(known)}')
    runs = [run for name, (teacher, arms) in layout.items()
            for run in ordered_runs(
                teacher,
                select_arms(arms, args.arms, pairs[name].get('variants', {})),
                seeds)]
    out = args.out or osp.join(
        RESULTS, 'kd_gain.json' if args.split == REPORTED_SPLIT else
        f'kd_gain_{args.split}.json')
    record = previous_record(out, args.split, seeds)
    check_recorded_runs(record, layout, out, work_dir)
    started = time.time()
    if not args.collect:
        for pair in pairs.values():
            ensure_data(pair, data_root(pair, work_dir))
        executor = SweepExecutor(
            Sweep(runs, work_dir),
            LaunchOptions(train_script=osp.join(REPO, 'tools', 'train.py'),
                          extra_args=args.train_args.split()))
        if args.dry_run:
            for row in executor.plan():
                print(f'{row["status"]:<8} {row["name"]}')
            print(f'{len(runs)} runs in {work_dir}')
            return 0
        try:
            executor.run()
        except KeyboardInterrupt:
            print('[kd_gain] interrupted: call the same command again to '
                  'resume', file=sys.stderr)
            return 130

    record.update(commit=commit())
    for name, (teacher, arms) in layout.items():
        pair = pairs[name]
        teacher_result = current_results([teacher], pair['metric'])[0]
        arm_results = {
            arm: dict(zip(by_seed, current_results(list(by_seed.values()),
                                                   pair['metric'])))
            for arm, by_seed in arms.items()}
        record['pairs'][name] = dict(
            pair_record(pair, teacher_result, arm_results),
            commit=record['commit'])
    record['wall_seconds'] = round(
        sum(p['train_seconds'] for p in record['pairs'].values()), 1)
    record['this_call_seconds'] = round(time.time() - started, 1)
    write_json(record, out)
    print('\n'.join(summary_lines(record)))
    print(f'[kd_gain] {out}; the README tables: python '
          f'tools/gen_results_tables.py --kd-gain {osp.relpath(out, REPO)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
