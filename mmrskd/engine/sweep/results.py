"""What the runs of a sweep reached, from mmengine's scalar logs (the
``<timestamp>/vis_data/scalars.json`` of every (re)start of a work dir), as
CSV, Markdown and a PNG plot (``docs/sweeps.md``, section 3)."""
import collections
import csv
import dataclasses
import os
import os.path as osp
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from mmrskd.engine.sweep.executor import PENDING, read_state
from mmrskd.engine.sweep.grid import SweepRun, name_value
from mmrskd.engine.work_dir import read_run_log
from mmrskd.utils import MMRSKDError

# metric keys tried in this order when none is given
PREFERRED_METRICS = ('/mAP', '/bbox_mAP', 'mAP')

Stat = collections.namedtuple('Stat', 'mean std count')


def pick_metric(keys: List[str], metric: Optional[str] = None) -> str:
    """The logged key to report: ``metric`` (a bare name such as ``'mAP'``
    matches ``'<prefix>/mAP'``), else the first of ``PREFERRED_METRICS``."""
    if metric is None:
        return next((k for suffix in PREFERRED_METRICS for k in keys
                     if k.endswith(suffix)), keys[0])
    matches = [k for k in keys if k == metric] or [
        k for k in keys if k.endswith('/' + metric)]
    if len(matches) != 1:
        raise MMRSKDError(f'metric "{metric}" was not logged; logged '
                          f'metrics: {", ".join(keys)} (pass one of them as '
                          '--metric)')
    return matches[0]


def stat_of(values) -> Optional[Stat]:
    """Mean, sample std (0 for one value) and count of the values that are
    not None; None without any."""
    values = [v for v in values if v is not None]
    return Stat(statistics.fmean(values), statistics.stdev(values) if len(
        values) > 1 else 0.0, len(values)) if values else None


def mean_of(values) -> Optional[float]:
    stat = stat_of(values)
    return stat and stat.mean


@dataclasses.dataclass
class RunResult:
    """What a run reached; ``status`` is the one of its state file, else
    ``pending``. ``final``/``best``/``teacher`` are values of ``metric``;
    ``best_step`` is the epoch (or iteration) of ``best``."""
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
        """The axes but the seed (runs that differ only in it share one)."""
        return {k: v for k, v in self.run.axis_values.items()
                if k != 'seed' and not k.endswith('.seed')}


def collect_results(runs: Sequence[SweepRun],
                    metric: Optional[str] = None) -> List[RunResult]:
    """Read every run's logs; ``metric`` as :func:`pick_metric` takes it.
    ``time_per_iter`` is the median over the logged windows, the first one
    (the warm-up) left out when there are three or more."""
    results = []
    for run in runs:
        log, state = read_run_log(run.work_dir), read_state(run.work_dir) or {}
        times = [r['time'] for _, r in sorted(log.train.items())
                 if 'time' in r]
        result = RunResult(
            run, state.get('status', PENDING),
            time_per_iter=statistics.median(
                times[len(times) >= 3:]) if times else None,
            iters=max(log.train, default=None),
            train_seconds=state.get('train_seconds'))
        keys = list(dict.fromkeys(k for r in log.val.values() for k in r))
        if keys:
            key = result.metric = pick_metric(keys, metric)
            values = [(s, r[key]) for s, r in sorted(log.val.items())
                      if key in r]
            result.final = values[-1][1]
            # the highest value, the first one on ties
            result.best_step, result.best = max(values, key=lambda v: v[1])
            result.teacher = ([r[key] for _, r in sorted(log.teacher.items())
                               if key in r] or [None])[-1]
        results.append(result)
    return results


def group_by_setting(results: Sequence[RunResult]
                     ) -> Dict[tuple, List[RunResult]]:
    """Runs that differ only in the seed, keyed by ``(method, setting)``;
    runs of one config with other fixed overrides (two experiments, or two
    sweeps) stay apart, the key then holding those overrides too."""
    groups, keys = {}, {}
    for r in results:
        axis_keys = {key for key, _, _ in r.run.axes}
        fixed = tuple(sorted(((k, v) for k, v in r.run.cfg_options.items()
                              if k not in axis_keys), key=repr))
        setting = tuple(r.setting.items())
        identity = (osp.realpath(r.run.config), setting, repr(fixed))
        if identity not in keys:
            key = (r.run.method, setting)
            keys[identity] = key if key not in groups else (
                r.run.method, setting + fixed)
        groups.setdefault(keys[identity], []).append(r)
    return groups


def setting_text(setting) -> str:
    """``loss_weight=2,tau=1`` for ``(('loss_weight', 2), ('tau', 1))``."""
    return ','.join(f'{k}={name_value(v)}' for k, v in setting)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The one Markdown table writer of the sweep outputs and READMEs."""
    return ''.join(['| ' + ' | '.join(header) + ' |\n',
                    '|' + '---|' * len(header) + '\n'] + [
        '| ' + ' | '.join(map(str, row)) + ' |\n' for row in rows])


def result_rows(results: Sequence[RunResult]) -> (List[str], List[list]):
    """Header and rows of the per-run table (raw values)."""
    axes = list(dict.fromkeys(k for r in results for k in r.run.axis_values))
    header = ['run', 'method', *axes, 'status', 'metric', 'final', 'best',
              'best step', 'teacher', 's/iter', 'iters', 'train s',
              'work_dir']
    return header, [[
        r.run.name, r.run.method, *[r.run.axis_values.get(a) for a in axes],
        r.status, r.metric, r.final, r.best, r.best_step, r.teacher,
        r.time_per_iter, r.iters, r.train_seconds, r.run.work_dir]
        for r in results]


def to_markdown(results: Sequence[RunResult]) -> str:
    """The per-run table (no work dirs) and, when seeds repeat, mean ± std."""
    header, rows = result_rows(results)
    digits = {'s/iter': 3, 'train s': 0}
    text = markdown_table(header[:-1], [[
        f'{v:.{digits.get(h, 4)}f}' if isinstance(v, float) else
        '' if v is None else v for h, v in zip(header[:-1], row)]
        for row in rows])
    groups = group_by_setting(results)
    if all(len(g) == 1 for g in groups.values()):
        return text
    lines = [[method, setting_text(setting) or '-', next(
        (r.metric for r in group if r.metric), ''),
        sum(r.final is not None for r in group)] + [
        '' if s is None else f'{s.mean:.4f} ± {s.std:.4f}' for s in (
            stat_of(r.final for r in group), stat_of(r.best for r in group))]
        for (method, setting), group in groups.items()]
    return text + '\nMean ± std over seeds:\n\n' + markdown_table(
        ['method', 'setting', 'metric', 'runs', 'final', 'best'], lines)


def plot_results(results: Sequence[RunResult], path: str):
    """The final metric of each setting: mean ± std, and each run as a dot."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend
    fig = Figure(figsize=(7, 4.5), layout='tight')
    ax = fig.subplots()
    labels = []
    for (method, setting), group in group_by_setting(results).items():
        finals = [r.final for r in group if r.final is not None]
        if finals:
            stat = stat_of(finals)
            drawn = ax.errorbar([len(labels)], [stat.mean], yerr=[stat.std],
                                marker='o', capsize=3)
            ax.scatter([len(labels)] * len(finals), finals, s=8, alpha=0.4,
                       color=drawn[0].get_color())
            labels.append(f'{method} {setting_text(setting)}'.strip())
    ax.set_xticks(range(len(labels)), labels, fontsize='x-small',
                  rotation=30, ha='right')
    metrics = sorted({r.metric for r in results if r.metric})
    ax.set_ylabel(f'{" / ".join(metrics) or "metric"} (final)')
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)


def write_results(results: Sequence[RunResult], out_dir: str,
                  stem: str = 'results') -> Dict[str, str]:
    """Write ``<stem>.{csv,md,png}`` to ``out_dir``; their paths by format."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'{stem}.{ext}')
             for ext in ('csv', 'md', 'png')}
    header, rows = result_rows(results)
    with open(paths['csv'], 'w', newline='') as f:
        csv.writer(f).writerows([header, *rows])  # None is written as ''
    Path(paths['md']).write_text(to_markdown(results))
    plot_results(results, paths['png'])
    return paths
