"""Benchmark tables of distilled students, from sweep outputs only.

For every distillation setting (a distiller config and its non-seed axes)
of one or more sweeps, a row gives:

* **Teacher**: the ``teacher/<metric>`` the distiller's ``DistillValLoop``
  logged, else the sweep runs of the config named by ``model.teacher``;
* **Student**: the sweep runs of the config named by ``model.student``
  (same values on the axes both have), i.e. the student trained alone;
* **Distilled** and **Gain** (distilled − student);
* the student's **Params** and **FLOPs** at the test Resize scale;
* **KD overhead**: seconds per training iteration of the distilled runs over
  those of the student-alone runs, medians from the training logs.

Metrics are the last validation of each run, ×100, mean ± std over seeds.
The tables go between ``<!-- results:start -->`` and ``<!-- results:end -->``
in README files; a README gets the rows of the configs in its folder or
below (the repository README: all rows).
"""
import dataclasses
import glob
import hashlib
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmrskd.engine.sweep.executor import read_manifest
from mmrskd.engine.sweep.grid import SweepRun, name_value
from mmrskd.engine.sweep.results import (RunResult, collect_results,
                                         group_by_setting, markdown_table,
                                         mean_std)
from mmrskd.evaluation.functional import sample_std
from mmrskd.models.utils.complexity import (deployed_model_cfg,
                                            model_complexity, test_input_shape)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.config import load_config, mmrskd_config_dir

START = '<!-- results:start -->'
END = '<!-- results:end -->'
COMPLEXITY_CACHE = 'complexity.json'


@dataclasses.dataclass
class Stat:
    """Mean, std and count of a metric over runs."""
    mean: float
    std: float
    count: int

    @classmethod
    def of(cls, values) -> Optional['Stat']:
        values = [v for v in values if v is not None]
        if not values:
            return None
        mean, std = mean_std(values)
        return cls(mean, std, len(values))


@dataclasses.dataclass
class BenchmarkRow:
    config: str                      # absolute path of the distiller config
    method: str
    setting: Tuple[Tuple[str, object], ...]
    metric: str
    distilled: Optional[Stat]
    student: Optional[Stat] = None
    teacher: Optional[Stat] = None
    params: Optional[int] = None
    flops: Optional[int] = None
    input_shape: Optional[Tuple[int, int]] = None
    kd_time: Optional[float] = None
    student_time: Optional[float] = None

    @property
    def gain(self) -> Optional[float]:
        if self.distilled is None or self.student is None:
            return None
        return self.distilled.mean - self.student.mean

    @property
    def overhead(self) -> Optional[float]:
        if not self.kd_time or not self.student_time:
            return None
        return self.kd_time / self.student_time


def config_path(ref, base_dir='.') -> Optional[str]:
    """An absolute path for a config reference (``mmrskd::`` resolved), the
    reference itself for other packages, None for model dicts."""
    if isinstance(ref, dict):
        ref = ref.get('cfg_path')
    if not isinstance(ref, str):
        return None
    if ref.startswith('mmrskd::'):
        return osp.realpath(osp.join(mmrskd_config_dir(),
                                     ref[len('mmrskd::'):]))
    if '::' in ref:
        return ref
    return osp.realpath(osp.join(base_dir, ref))


def load_sweeps(sweep_dirs: Sequence[str], metric: Optional[str] = None
                ) -> List[RunResult]:
    """The results of every run in the manifests of ``sweep_dirs``."""
    results = []
    for sweep_dir in sweep_dirs:
        manifest = read_manifest(sweep_dir)
        runs = []
        for record in manifest['runs'].values():
            run = SweepRun.from_dict(record)
            config = record.get('config_path', run.config)
            # a run's work dir is <sweep dir>/<name>, wherever that is now
            runs.append(dataclasses.replace(
                run, config=config if osp.exists(config) else run.config,
                work_dir=osp.join(sweep_dir, run.name)))
        results += collect_results(runs, metric or manifest.get('metric'))
    return results


def _run_cfg(result: RunResult):
    cfg = load_config(result.run.config, where=result.run.name)
    cfg.merge_from_dict(result.run.cfg_options)
    return cfg


def _compatible(result: RunResult, setting: dict) -> bool:
    """Same value on every non-seed axis the run shares with ``setting``."""
    return all(setting[k] == v for k, v in result.setting.items()
               if k in setting)


def _runs_of(results, path, setting):
    return [r for r in results
            if osp.realpath(r.run.config) == path and _compatible(r, setting)
            and r.final is not None]


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


class ComplexityCache:
    """Params/FLOPs by model config and input shape, in a JSON file."""

    def __init__(self, path: Optional[str]):
        self.path = path
        self.data = {}
        if path and osp.isfile(path):
            with open(path) as f:
                self.data = json.load(f)

    def get(self, cfg) -> Optional[dict]:
        from mmengine.registry import init_default_scope
        shape = test_input_shape(cfg)
        if shape is None:
            return None
        model = deployed_model_cfg(cfg)
        key = hashlib.sha256(json.dumps(
            [model.to_dict(), shape], sort_keys=True,
            default=repr).encode()).hexdigest()
        if key not in self.data:
            init_default_scope(cfg.get('default_scope', 'mmrskd'))
            info = model_complexity(model, shape)
            info['input_shape'] = list(info['input_shape'])
            self.data[key] = info
            if self.path:
                with open(self.path, 'w') as f:
                    json.dump(self.data, f, indent=2)
        return self.data[key]


def benchmark_rows(results: Sequence[RunResult],
                   complexity: Optional[ComplexityCache] = None
                   ) -> List[BenchmarkRow]:
    """One row per distillation setting found in ``results``."""
    complexity = complexity or ComplexityCache(None)
    cfgs = {}
    rows = []
    for (method, setting), group in group_by_setting(results).items():
        first = group[0]
        if first.run.config not in cfgs:
            cfgs[first.run.config] = _run_cfg(first)
        cfg = cfgs[first.run.config]
        model = cfg.get('model', {})
        if not ('student' in model and 'teacher' in model):
            continue
        setting = dict(setting)
        done = [r for r in group if r.final is not None]
        metric = next((r.metric for r in done), None) or first.metric
        row = BenchmarkRow(osp.realpath(first.run.config), method,
                           tuple(setting.items()), metric,
                           Stat.of(r.final for r in done))
        student_path = config_path(model['student'])
        students = _runs_of(results, student_path, setting) \
            if student_path else []
        students = [r for r in students if r.metric == metric]
        row.student = Stat.of(r.final for r in students)
        row.teacher = Stat.of(r.teacher for r in done)
        teacher_path = config_path(model['teacher'])
        if row.teacher is None and teacher_path:
            row.teacher = Stat.of(
                r.final for r in _runs_of(results, teacher_path, setting)
                if r.metric == metric)
        info = complexity.get(cfg)
        if info:
            row.params, row.flops = info['params'], info['flops']
            row.input_shape = tuple(info['input_shape'])
        row.kd_time = _mean(r.time_per_iter for r in group)
        row.student_time = _mean(r.time_per_iter for r in students)
        rows.append(row)
    return rows


def _stat(stat: Optional[Stat], digits: int) -> str:
    if stat is None:
        return '-'
    text = f'{100 * stat.mean:.{digits}f}'
    return text + (f' ± {100 * stat.std:.{digits}f}' if stat.count > 1
                   else '')


def render_table(rows: Sequence[BenchmarkRow], base_dir: str = '.',
                 digits: int = 1) -> str:
    """The Markdown table; config links are relative to ``base_dir``."""
    header = ['Config', 'Setting', 'Runs', 'Metric', 'Teacher', 'Student',
              'Distilled', 'Gain', 'Params (M)', 'FLOPs (G)', 'Input',
              's/iter KD', 's/iter student', 'KD overhead']
    lines = []
    for row in rows:
        link = osp.relpath(row.config, base_dir)
        gain = row.gain
        lines.append([
            f'[{row.method}]({link})',
            ','.join(f'{k}={name_value(v)}' for k, v in row.setting) or '-',
            row.distilled.count if row.distilled else 0, row.metric or '-',
            _stat(row.teacher, digits), _stat(row.student, digits),
            _stat(row.distilled, digits),
            '-' if gain is None else f'{100 * gain:+.{digits}f}',
            '-' if row.params is None else f'{row.params / 1e6:.2f}',
            '-' if row.flops is None else f'{row.flops / 1e9:.2f}',
            '-' if row.input_shape is None else
            '×'.join(map(str, row.input_shape)),
            '-' if row.kd_time is None else f'{row.kd_time:.3f}',
            '-' if row.student_time is None else f'{row.student_time:.3f}',
            '-' if row.overhead is None else f'×{row.overhead:.2f}'])
    return markdown_table(header, lines)


def slot_rows(folder: str, rows: Sequence[BenchmarkRow]
              ) -> List[BenchmarkRow]:
    """Empty rows (slots for results to come) for the distiller configs
    directly in ``folder``, a folder of ``configs/``, that no sweep has
    run."""
    if not folder.startswith(osp.realpath(mmrskd_config_dir()) + os.sep):
        return []
    done = {r.config for r in rows}
    slots = []
    for path in sorted(glob.glob(osp.join(folder, '*.py'))):
        path = osp.realpath(path)
        if path in done:
            continue
        model = load_config(path).get('model', {})
        if 'student' in model and 'teacher' in model:
            slots.append(BenchmarkRow(
                path, osp.splitext(osp.basename(path))[0], (), None, None))
    return slots


def readme_block(rows: Sequence[BenchmarkRow], readme: str,
                 sources: Sequence[str], digits: int = 1) -> str:
    """The text between the markers of ``readme``: its rows, and a slot for
    every other distiller config of its folder, or a note."""
    folder = osp.dirname(osp.realpath(readme))
    mine = [r for r in rows if r.config.startswith(folder + os.sep)]
    mine += slot_rows(folder, mine)
    command = 'python tools/gen_results_tables.py ' + ' '.join(sources)
    note = (f'<!-- generated by `{command}`; do not edit by hand -->\n')
    if not mine:
        return note + ('\n_No distillation results yet: run '
                       '`tools/sweep.py`, then the command above._\n')
    return note + ('\nMetrics ×100 at the last validation, mean ± std over '
                   'the runs; Params/FLOPs of the student (1 multiply-add = '
                   '1 FLOP); KD overhead = training time per iteration of '
                   'the distilled runs over the student-alone runs; rows '
                   'with 0 runs are slots for results to come.\n\n'
                   + render_table(mine, osp.dirname(readme), digits))


def replace_block(text: str, block: str, where: str, start: str = START,
                  end: str = END) -> str:
    """Put ``block`` between the markers ``start`` and ``end`` of ``text``."""
    pattern = re.compile(re.escape(start) + r'.*?' + re.escape(end),
                         re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise MMRSKDError(f'{where}: expected one {start} ... {end} pair; '
                          'add the two markers where the table goes')
    return pattern.sub(lambda _: f'{start}\n{block}{end}', text)


KD_GAIN_START = '<!-- kd-gain:start -->'
KD_GAIN_END = '<!-- kd-gain:end -->'


def format_number(value, sign=False, digits=1):
    """``value`` with ``digits`` decimals (``sign``: always signed); ``-``
    for None, ``∞``/``-∞`` for infinities."""
    if value is None:
        return '-'
    if value in (float('inf'), float('-inf')):
        return '∞' if value > 0 else '-∞'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def kd_gain_block(record: dict, source: str,
                  method: Optional[str] = None) -> str:
    """The paired-gain tables of ``benchmarks/kd_gain.py``'s JSON: every
    pair of ``method`` (all pairs when None), one row per arm."""
    seeds = record['seeds']
    lines = [
        f'<!-- generated by `python tools/gen_results_tables.py --kd-gain '
        f'{source}`; do not edit by hand -->', '',
        f'`benchmarks/kd_gain.py --split {record["split"]}`, seeds '
        f'{", ".join(map(str, seeds))}, commit '
        f'`{(record.get("commit") or "-")[:10]}`, '
        f'{record["wall_seconds"] / 60:.0f} min of training in all. '
        'Metric ×100 at the last validation; gain = paired (same seed) '
        'difference to the student alone, ± its standard error; t = mean / '
        'se; **yes** when the mean is > 0 and t ≥ 2.', '']
    header = ['Pair', 'Metric', 'Teacher', 'Arm'] + [
        f'seed {s}' for s in seeds] + ['Mean ± std', 'Gain ± se', 't',
                                       'Gain?']
    rows = []
    for name, pair in record['pairs'].items():
        if method is not None and pair['method'] != method:
            continue
        for arm, values in pair['arms'].items():
            vals = list(values.values())
            mean = sum(vals) / len(vals) if vals else None
            std = sample_std(vals)
            gain = pair['gains'].get(arm)
            rows.append([
                name, pair['metric'], format_number(pair['teacher']),
                f'**{arm}**' if arm == pair['method'] else arm
            ] + [format_number(values.get(str(s))) for s in seeds] + [
                f'{format_number(mean)} ± {format_number(std)}',
                '-' if gain is None else
                f'{format_number(gain["mean"], True)} ± {format_number(gain["se"])}',
                '-' if gain is None else format_number(gain['t']),
                '-' if gain is None else ('**yes**' if gain['beats']
                                          else 'no')])
        for baseline, versus in pair['method_vs_baseline'].items():
            rows.append([name, pair['metric'], '', f'{pair["method"]} − '
                         f'{baseline}'] + ['' for _ in seeds] + [
                             '', f'{format_number(versus["mean"], True)} ± '
                             f'{format_number(versus["se"])}', format_number(versus['t']),
                             '**yes**' if versus['beats'] else 'no'])
    if not rows:
        return '\n'.join(lines[:1]) + '\n\nNo pair of this method in ' \
            f'{source} yet.\n'
    return '\n'.join(lines) + '\n' + markdown_table(header, rows) + '\n'


def update_kd_gain_readmes(record: dict, readmes: Sequence[str], source: str,
                           check: bool = False) -> Dict[str, bool]:
    """Rewrite the kd-gain tables of ``readmes``: ``configs/<method>/``
    gets that method's pairs; a baseline's folder (an arm that is no pair's
    method, e.g. ``configs/pkd``) and any other README get all pairs."""
    baselines = {arm for p in record['pairs'].values() for arm in p['arms']
                 } - {p['method'] for p in record['pairs'].values()}
    changed = {}
    for readme in readmes:
        folder = osp.dirname(osp.abspath(readme))
        in_configs = osp.basename(osp.dirname(folder)) == 'configs'
        folder = osp.basename(folder)
        # a method's folder: its pairs; a baseline's or the root: all pairs
        method = folder if in_configs and folder not in baselines else None
        with open(readme) as f:
            text = f.read()
        new = replace_block(text, kd_gain_block(record, source, method),
                            readme, KD_GAIN_START, KD_GAIN_END)
        changed[readme] = new != text
        if changed[readme] and not check:
            with open(readme, 'w') as f:
                f.write(new)
    return changed


def update_readmes(rows: Sequence[BenchmarkRow], readmes: Sequence[str],
                   sources: Sequence[str], digits: int = 1,
                   check: bool = False) -> Dict[str, bool]:
    """Rewrite the tables of ``readmes``; with ``check`` only report.

    Returns:
        dict[str, bool]: whether each README changed (or would change).
    """
    changed = {}
    for readme in readmes:
        with open(readme) as f:
            text = f.read()
        new = replace_block(text, readme_block(rows, readme, sources,
                                                digits), readme)
        changed[readme] = new != text
        if changed[readme] and not check:
            with open(readme, 'w') as f:
                f.write(new)
    return changed


def find_readmes(root: str, marker: str = START) -> List[str]:
    """``README.md`` of ``root`` and of ``root/configs/*/`` that have
    ``marker``."""
    import glob
    candidates = [osp.join(root, 'README.md')] + sorted(
        glob.glob(osp.join(root, 'configs', '*', 'README.md')))
    found = []
    for path in candidates:
        if osp.isfile(path):
            with open(path) as f:
                if marker in f.read():
                    found.append(path)
    return found
