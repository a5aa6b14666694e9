"""One results table for a sweep, from the runs' own logs: CSV, Markdown and
a PNG plot (metric against an axis, one line per method)."""
import csv
import dataclasses
import os
import os.path as osp
import statistics
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

from mmrskd.engine.sweep.grid import SweepRun, name_value
from mmrskd.engine.sweep.logs import pick_metric, read_run_log
from mmrskd.engine.sweep.state import PENDING, read_state


@dataclasses.dataclass
class RunResult:
    """What a run reached, from its logs; ``status`` is the one of its
    state file (``done``, ``failed``, ``running``) or ``pending``.

    ``final``/``best``/``teacher`` are values of :attr:`metric`;
    ``best_step`` is the epoch (or iteration) of ``best``.
    """
    run: SweepRun
    status: str
    metric: Optional[str] = None
    final: Optional[float] = None
    best: Optional[float] = None
    best_step: Optional[int] = None
    teacher: Optional[float] = None
    time_per_iter: Optional[float] = None
    iters: Optional[int] = None
    train_seconds: Optional[float] = None

    @property
    def setting(self) -> Dict[str, Any]:
        """The axes without the seed: runs that differ only in the seed
        share a setting."""
        return {k: v for k, v in self.run.axis_values.items()
                if not is_seed_axis(k)}


def is_seed_axis(short_name: str) -> bool:
    return short_name == 'seed' or short_name.endswith('.seed')


def collect_results(runs: Sequence[SweepRun],
                    metric: Optional[str] = None) -> List[RunResult]:
    """Read every run's logs.

    Args:
        runs (list[SweepRun]): the runs.
        metric (str, optional): the metric key (or bare name such as
            ``'mAP'``); default: picked from each run's logged keys, see
            :func:`~mmrskd.engine.sweep.logs.pick_metric`.
    """
    results = []
    for run in runs:
        log, state = read_run_log(run.work_dir), read_state(run.work_dir) or {}
        result = RunResult(run, state.get('status', PENDING),
                           time_per_iter=log.time_per_iter(),
                           iters=log.last_iter,
                           train_seconds=state.get('train_seconds'))
        if log.metric_keys:
            key = result.metric = pick_metric(log.metric_keys, metric)
            result.final = log.final(key)
            result.best, result.best_step = log.best(key)
            result.teacher = log.teacher_metric(key)
        results.append(result)
    return results


def axis_columns(results: Sequence[RunResult]) -> List[str]:
    columns = []
    for result in results:
        columns += [k for k in result.run.axis_values if k not in columns]
    return columns


def _cell(value, digits=4):
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def result_rows(results: Sequence[RunResult]) -> (List[str], List[list]):
    """Header and rows of the per-run table (raw values)."""
    axes = axis_columns(results)
    header = ['run', 'method', *axes, 'status', 'metric', 'final', 'best',
              'best step', 'teacher', 's/iter', 'iters', 'train s',
              'work_dir']
    rows = []
    for r in results:
        values = r.run.axis_values
        rows.append([r.run.name, r.run.method,
                     *[values.get(a) for a in axes], r.status, r.metric,
                     r.final, r.best, r.best_step, r.teacher,
                     r.time_per_iter, r.iters, r.train_seconds,
                     r.run.work_dir])
    return header, rows


def write_csv(results: Sequence[RunResult], path: str):
    header, rows = result_rows(results)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([['' if v is None else v for v in row]
                          for row in rows])


def mean_std(values: Sequence[float]) -> (Optional[float], Optional[float]):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def group_by_setting(results: Sequence[RunResult]
                     ) -> 'OrderedDict[tuple, List[RunResult]]':
    """Runs that differ only in the seed, keyed by ``(method, setting)``.

    Runs of one config with other non-axis overrides (two experiments, or
    two sweeps) are different settings even with the same axis values; the
    key then holds those overrides too.
    """
    groups, keys = OrderedDict(), {}
    for r in results:
        axis_keys = {key for key, _, _ in r.run.axes}
        fixed = tuple(sorted(((k, v) for k, v in r.run.cfg_options.items()
                              if k not in axis_keys), key=repr))
        setting = tuple(r.setting.items())
        identity = (osp.realpath(r.run.config), setting, repr(fixed))
        if identity not in keys:
            key = (r.run.method, setting)
            if key in groups:  # same axes, other fixed overrides: show them
                key = (r.run.method, setting + fixed)
            keys[identity] = key
            groups.setdefault(key, [])
        groups[keys[identity]].append(r)
    return groups


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def to_markdown(results: Sequence[RunResult]) -> str:
    """The per-run table and, when seeds repeat a setting, mean ± std."""
    header, rows = result_rows(results)
    digits = {'s/iter': 3, 'train s': 0}
    shown = [[_cell(v, digits.get(h, 4)) for h, v in zip(header, row)]
             for row in rows]
    text = markdown_table(header[:-1], [row[:-1] for row in shown])
    groups = group_by_setting(results)
    if any(len(g) > 1 for g in groups.values()):
        lines = []
        for (method, setting), group in groups.items():
            mean, std = mean_std([r.final for r in group])
            best_mean, best_std = mean_std([r.best for r in group])
            lines.append([
                method, ','.join(f'{k}={name_value(v)}' for k, v in setting)
                or '-', next((r.metric for r in group if r.metric), ''),
                len([r for r in group if r.final is not None]),
                '' if mean is None else f'{mean:.4f} ± {std:.4f}',
                '' if best_mean is None else
                f'{best_mean:.4f} ± {best_std:.4f}'])
        text += '\nMean ± std over seeds:\n\n' + markdown_table(
            ['method', 'setting', 'metric', 'runs', 'final', 'best'], lines)
    return text


def _plot_axis(results: Sequence[RunResult]) -> Optional[str]:
    """The non-seed axis with numeric values and the most distinct values."""
    best, best_count = None, 1
    for axis in axis_columns(results):
        if is_seed_axis(axis):
            continue
        values = [r.run.axis_values.get(axis) for r in results
                  if axis in r.run.axis_values]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in values):
            continue
        count = len(set(values))
        if count > best_count:
            best, best_count = axis, count
    return best


def plot_results(results: Sequence[RunResult], path: str):
    """Final metric against the most varied numeric axis, one line per
    method and remaining setting, mean ± std over seeds; a bar chart when no
    axis is numeric."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metrics = sorted({r.metric for r in results if r.metric})
    axis = _plot_axis(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if axis is not None:
        series = OrderedDict()
        for r in results:
            if r.final is None or axis not in r.run.axis_values:
                continue
            rest = {k: v for k, v in r.setting.items() if k != axis}
            label = r.run.method + ''.join(
                f', {k}={name_value(v)}' for k, v in rest.items())
            series.setdefault(label, {}).setdefault(
                r.run.axis_values[axis], []).append(r.final)
        for label, points in series.items():
            xs = sorted(points)
            stats = [mean_std(points[x]) for x in xs]
            ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats],
                        marker='o', capsize=3, label=label)
            for x in xs:
                ax.scatter([x] * len(points[x]), points[x], s=8, alpha=0.4,
                           color=ax.lines[-1].get_color())
        ax.set_xlabel(axis)
        if series:
            ax.legend(fontsize='small')
    else:
        groups = [(method + ''.join(f'\n{k}={name_value(v)}'
                                    for k, v in setting), group)
                  for (method, setting), group in
                  group_by_setting(results).items()]
        groups = [(label, mean_std([r.final for r in group]))
                  for label, group in groups]
        groups = [(label, m, s) for label, (m, s) in groups if m is not None]
        ax.bar(range(len(groups)), [m for _, m, _ in groups],
               yerr=[s for _, _, s in groups], capsize=3)
        ax.set_xticks(range(len(groups)), [g[0] for g in groups],
                      fontsize='x-small', rotation=30, ha='right')
    ax.set_ylabel(f'{" / ".join(metrics) or "metric"} (final)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: Sequence[RunResult], out_dir: str,
                  stem: str = 'results') -> Dict[str, str]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.png`` to
    ``out_dir``; returns their paths by format."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'{stem}.{ext}')
             for ext in ('csv', 'md', 'png')}
    write_csv(results, paths['csv'])
    with open(paths['md'], 'w') as f:
        f.write(to_markdown(results))
    plot_results(results, paths['png'])
    return paths
