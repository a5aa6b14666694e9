"""The README tables, from sweep outputs only (``docs/sweeps.md``, section
4), and the paired-gain tables of ``benchmarks/kd_gain.py``'s JSON."""
import dataclasses
import glob
import json
import math
import os
import os.path as osp
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.registry import init_default_scope

from mmrskd.engine.sweep.grid import config_stem, read_manifest
from mmrskd.engine.sweep.results import (RunResult, Stat, collect_results,
                                         group_by_setting, markdown_table,
                                         mean_of, setting_text, stat_of)
from mmrskd.evaluation.functional import sample_std
from mmrskd.models.utils.complexity import (deployed_model_cfg,
                                            model_complexity, test_input_shape)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.config import load_config, mmrskd_config_dir

START, END = '<!-- results:start -->', '<!-- results:end -->'
KD_GAIN_START, KD_GAIN_END = '<!-- kd-gain:start -->', '<!-- kd-gain:end -->'
# benchmarks/kd_gain.py's table split; another split (the tuning seeds) has
# markers of its own, so its figures never stand in for the table's
KD_GAIN_REPORTED_SPLIT = 'heldout'


def kd_gain_markers(split: str) -> Tuple[str, str]:
    """The README markers of a ``benchmarks/kd_gain.py`` split's table:
    ``<!-- kd-gain:start -->`` for the reported split, ``<!--
    kd-gain-tune:start -->`` for ``tune``."""
    if split == KD_GAIN_REPORTED_SPLIT:
        return KD_GAIN_START, KD_GAIN_END
    return f'<!-- kd-gain-{split}:start -->', f'<!-- kd-gain-{split}:end -->'


@dataclasses.dataclass
class BenchmarkRow:
    """One row of the results table; ``config`` is an absolute path."""
    config: str
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
        if self.distilled and self.student:
            return self.distilled.mean - self.student.mean

    @property
    def overhead(self) -> Optional[float]:
        if self.kd_time and self.student_time:
            return self.kd_time / self.student_time


def config_path(ref) -> Optional[str]:
    """The absolute path of a config reference (``mmrskd::`` resolved), the
    reference itself for other packages, None for model dicts."""
    ref = ref.get('cfg_path') if isinstance(ref, dict) else ref
    if not isinstance(ref, str):
        return None
    if ref.startswith('mmrskd::'):
        ref = osp.join(mmrskd_config_dir(), ref[len('mmrskd::'):])
    return ref if '::' in ref else osp.realpath(ref)


def load_sweeps(sweep_dirs: Sequence[str], metric: Optional[str] = None
                ) -> List[RunResult]:
    """The results of every run in the manifests of ``sweep_dirs``."""
    return [result for runs, sweep_metric in map(read_manifest, sweep_dirs)
            for result in collect_results(runs, metric or sweep_metric)]


def benchmark_rows(results: Sequence[RunResult]) -> List[BenchmarkRow]:
    """One row per distillation setting in ``results``; student and teacher
    values from the runs of the configs the distiller names that agree on
    the axes both have. Params and FLOPs are counted once per model."""
    rows, complexities = [], {}
    for (method, setting), group in group_by_setting(results).items():
        run = group[0].run
        cfg = load_config(run.config, where=run.name)
        cfg.merge_from_dict(run.cfg_options)
        model = cfg.get('model', {})
        if not ('student' in model and 'teacher' in model):
            continue
        setting = dict(setting)
        done = [r for r in group if r.final is not None]
        metric = next((r.metric for r in done), group[0].metric)

        def runs_of(key):
            path = config_path(model[key])
            return [r for r in results if r.final is not None
                    and osp.realpath(r.run.config) == path
                    and r.metric == metric and all(
                        setting.get(k, v) == v for k, v in r.setting.items())]

        students = runs_of('student')
        shape, deployed = test_input_shape(cfg), deployed_model_cfg(cfg)
        key = json.dumps([deployed.to_dict(), shape], sort_keys=True,
                         default=repr)
        if shape and key not in complexities:
            init_default_scope(cfg.get('default_scope', 'mmrskd'))
            complexities[key] = model_complexity(deployed, shape)
        info = complexities.get(key, {})
        rows.append(BenchmarkRow(
            osp.realpath(run.config), method, tuple(setting.items()), metric,
            stat_of(r.final for r in done),
            student=stat_of(r.final for r in students),
            teacher=stat_of(r.teacher for r in done) or stat_of(
                r.final for r in runs_of('teacher')),
            params=info.get('params'), flops=info.get('flops'),
            input_shape=tuple(info['input_shape']) if info else None,
            kd_time=mean_of(r.time_per_iter for r in group),
            student_time=mean_of(r.time_per_iter for r in students)))
    return rows


def format_number(value, sign=False, digits=1, unit=1.0):
    """``value / unit`` with ``digits`` decimals (``sign``: always signed);
    ``-`` for None, ``∞``/``-∞`` for infinities."""
    if value is None:
        return '-'
    if math.isinf(value):
        return '∞' if value > 0 else '-∞'
    return f'{value / unit:{"+" if sign else ""}.{digits}f}'


def render_table(rows: Sequence[BenchmarkRow], base_dir: str = '.',
                 digits: int = 1) -> str:
    """The Markdown table; config links are relative to ``base_dir``."""

    def metric(stat):
        return '-' if stat is None else format_number(
            100 * stat.mean, digits=digits) + (
                f' ± {100 * stat.std:.{digits}f}' if stat.count > 1 else '')

    header = ['Config', 'Setting', 'Runs', 'Metric', 'Teacher', 'Student',
              'Distilled', 'Gain', 'Params (M)', 'FLOPs (G)', 'Input',
              's/iter KD', 's/iter student', 'KD overhead']
    return markdown_table(header, [[
        f'[{row.method}]({osp.relpath(row.config, base_dir)})',
        setting_text(row.setting) or '-',
        row.distilled.count if row.distilled else 0, row.metric or '-',
        metric(row.teacher), metric(row.student), metric(row.distilled),
        format_number(row.gain, True, digits, unit=0.01),
        format_number(row.params, digits=2, unit=1e6),
        format_number(row.flops, digits=2, unit=1e9),
        '×'.join(map(str, row.input_shape or ())) or '-',
        format_number(row.kd_time, digits=3),
        format_number(row.student_time, digits=3),
        '-' if row.overhead is None else f'×{row.overhead:.2f}']
        for row in rows])


def slot_rows(folder: str, rows: Sequence[BenchmarkRow]
              ) -> List[BenchmarkRow]:
    """Empty rows (slots for results to come) for the distiller configs
    directly in ``folder``, a folder of ``configs/``, that no row has."""
    if not folder.startswith(osp.realpath(mmrskd_config_dir()) + os.sep):
        return []
    done = {r.config for r in rows}
    paths = [p for p in map(osp.realpath, sorted(glob.glob(osp.join(
        folder, '*.py')))) if p not in done]
    return [BenchmarkRow(path, config_stem(path), (), None, None)
            for path in paths if {'student', 'teacher'} <= set(
                load_config(path).get('model', {}))]


def readme_block(rows: Sequence[BenchmarkRow], readme: str,
                 sources: Sequence[str], digits: int = 1) -> str:
    """The text between the markers of ``readme``: the rows of the configs in
    its folder or below, a slot per other distiller config there, or a note."""
    folder = osp.dirname(osp.realpath(readme))
    mine = [r for r in rows if r.config.startswith(folder + os.sep)]
    mine += slot_rows(folder, mine)
    command = 'python tools/gen_results_tables.py ' + ' '.join(sources)
    note = f'<!-- generated by `{command}`; do not edit by hand -->\n'
    if not mine:
        return note + ('\n_No distillation results yet: run '
                       '`tools/sweep.py`, then the command above._\n')
    return note + ('\nMetrics ×100 at the last validation, mean ± std over '
                   'the runs; Params/FLOPs of the student (1 multiply-add = '
                   '1 FLOP); KD overhead = training time per iteration of '
                   'the distilled runs over the student-alone runs; rows '
                   'with 0 runs are slots for results to come.\n\n'
                   + render_table(mine, osp.dirname(readme), digits))


def kd_gain_block(record: dict, source: str,
                  method: Optional[str] = None) -> str:
    """The paired-gain table of ``benchmarks/kd_gain.py``'s JSON: one row
    per arm of every pair of ``method`` (of all pairs when None)."""
    seeds = record['seeds']
    note = (f'<!-- generated by `python tools/gen_results_tables.py '
            f'--kd-gain {source}`; do not edit by hand -->')

    def gain_cells(gain):
        return ['-', '-', '-'] if gain is None else [
            f'{format_number(gain["mean"], True)} ± '
            f'{format_number(gain["se"])}', format_number(gain['t']),
            '**yes**' if gain['beats'] else 'no']

    rows, commits = [], {}
    for name, pair in record['pairs'].items():
        if method not in (None, pair['method']):
            continue
        # a --pairs call updates its own pairs only: each has its commit
        commits.setdefault((pair.get('commit') or record.get('commit')
                            or '-')[:10], []).append(name)
        for arm, values in pair['arms'].items():
            rows.append([
                name, pair['metric'], format_number(pair['teacher']),
                f'**{arm}**' if arm == pair['method'] else arm,
                *[format_number(values.get(str(s))) for s in seeds],
                f'{format_number(mean_of(values.values()))} ± '
                f'{format_number(sample_std(values.values()))}',
                *gain_cells(pair['gains'].get(arm))])
        for baseline, versus in pair['method_vs_baseline'].items():
            rows.append([name, pair['metric'], '',
                         f'{pair["method"]} − {baseline}', *[''] * len(seeds),
                         '', *gain_cells(versus)])
    if not rows:
        return f'{note}\n\nNo pair of this method in {source} yet.\n'
    header = ['Pair', 'Metric', 'Teacher', 'Arm', *[
        f'seed {s}' for s in seeds], 'Mean ± std', 'Gain ± se', 't', 'Gain?']
    if len(commits) == 1:
        commit_text = f'commit `{next(iter(commits))}`'
    else:
        commit_text = 'commits ' + ', '.join(
            f'`{c}` ({", ".join(names)})' for c, names in commits.items())
    return (f'{note}\n\n`benchmarks/kd_gain.py --split {record["split"]}`, '
            f'seeds {", ".join(map(str, seeds))}, {commit_text}, '
            f'{record["wall_seconds"] / 60:.0f} min of training in all. '
            'Metric ×100 at the last validation; gain = paired (same seed) '
            'difference to the student alone, ± its standard error; t = '
            'mean / se; **yes** when the mean is > 0 and t ≥ 2.\n\n'
            + markdown_table(header, rows) + '\n')


def replace_block(text: str, block: str, where: str, start: str = START,
                  end: str = END) -> str:
    """Put ``block`` between the markers ``start`` and ``end`` of ``text``."""
    pattern = re.compile(f'{re.escape(start)}.*?{re.escape(end)}', re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise MMRSKDError(f'{where}: expected one {start} ... {end} pair; '
                          'add the two markers where the table goes')
    return pattern.sub(lambda _: f'{start}\n{block}{end}', text)


def rewrite_readmes(readmes: Sequence[str], block: Callable[[str], str],
                    start: str = START, end: str = END,
                    check: bool = False) -> Dict[str, bool]:
    """Put ``block(readme)`` between the markers of every README (with
    ``check``, only compare); whether each changed (or would change)."""
    changed = {}
    for readme in readmes:
        text = Path(readme).read_text()
        new = replace_block(text, block(readme), readme, start, end)
        changed[readme] = new != text
        if changed[readme] and not check:
            Path(readme).write_text(new)
    return changed


def update_kd_gain_readmes(record: dict, readmes: Sequence[str], source: str,
                           check: bool = False) -> Dict[str, bool]:
    """Rewrite the kd-gain tables of ``readmes`` (between the markers of
    the record's split): ``configs/<method>/`` gets that method's pairs; a
    baseline's folder (an arm that is no pair's method, e.g.
    ``configs/pkd``) and any other README get all pairs."""
    methods = {p['method'] for p in record['pairs'].values()}

    def block(readme):
        folder = osp.dirname(osp.abspath(readme))
        method = osp.basename(folder)
        own = osp.basename(osp.dirname(folder)) == 'configs' and (
            method in methods or not any(
                method in p['arms'] for p in record['pairs'].values()))
        return kd_gain_block(record, source, method if own else None)

    return rewrite_readmes(readmes, block, *kd_gain_markers(record['split']),
                           check=check)


def find_readmes(root: str, marker: str = START) -> List[str]:
    """``README.md`` of ``root`` and of ``root/configs/*/`` with ``marker``."""
    return [path for path in [osp.join(root, 'README.md')] + sorted(
        glob.glob(osp.join(root, 'configs', '*', 'README.md')))
        if osp.isfile(path) and marker in Path(path).read_text()]
