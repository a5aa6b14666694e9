"""Read what mmengine logged for a run: ``<work_dir>/<timestamp>/vis_data/
scalars.json`` of every (re)start, one JSON record per line.

Training records carry ``lr``/``loss*``, ``time`` (seconds per iteration,
averaged over the logger interval) and ``step`` (the iteration). Validation
records carry the evaluator's metrics (``dota/mAP``, ``coco/bbox_mAP``, ...)
with ``step`` = the epoch (or iteration for iteration-based loops). The
distiller's ``DistillValLoop`` adds ``teacher/<metric>`` records.
"""
import dataclasses
import glob
import json
import os.path as osp
import re
import statistics
from typing import Dict, List, Optional

from mmrskd.utils import MMRSKDError

TEACHER_PREFIX = 'teacher/'
# metric keys tried in this order when none is configured
PREFERRED_METRICS = ('/mAP', '/bbox_mAP', 'mAP')
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


@dataclasses.dataclass
class RunLog:
    """The scalars of a run, restarts merged (a later start overrides
    records of the same step).

    Attributes:
        train (dict[int, dict]): training records by step (iteration).
        val (dict[int, dict]): student validation metrics by step.
        teacher (dict[int, dict]): teacher validation metrics by step, keys
            without the ``teacher/`` prefix.
        log_files (list[str]): the text logs, oldest first.
        scalar_files (list[str]): the scalars files, oldest first.
    """
    train: Dict[int, dict] = dataclasses.field(default_factory=dict)
    val: Dict[int, dict] = dataclasses.field(default_factory=dict)
    teacher: Dict[int, dict] = dataclasses.field(default_factory=dict)
    log_files: List[str] = dataclasses.field(default_factory=list)
    scalar_files: List[str] = dataclasses.field(default_factory=list)

    @property
    def metric_keys(self) -> List[str]:
        keys = []
        for record in self.val.values():
            keys += [k for k in record if k not in keys]
        return keys

    def final(self, key: str) -> Optional[float]:
        """The last validation value of ``key``."""
        steps = [s for s in sorted(self.val) if key in self.val[s]]
        return self.val[steps[-1]][key] if steps else None

    def best(self, key: str) -> (Optional[float], Optional[int]):
        """The highest validation value of ``key`` and its step (the first
        one on ties)."""
        steps = [s for s in sorted(self.val) if key in self.val[s]]
        if not steps:
            return None, None
        step = max(steps, key=lambda s: (self.val[s][key], -s))
        return self.val[step][key], step

    def teacher_metric(self, key: str) -> Optional[float]:
        """The last teacher value of ``key``, if the teacher was evaluated."""
        steps = [s for s in sorted(self.teacher) if key in self.teacher[s]]
        return self.teacher[steps[-1]][key] if steps else None

    def time_per_iter(self) -> Optional[float]:
        """Median seconds per training iteration, without the first logged
        window (it holds the warm-up) when there are three or more."""
        times = [self.train[s]['time'] for s in sorted(self.train)
                 if 'time' in self.train[s]]
        if len(times) >= 3:
            times = times[1:]
        return statistics.median(times) if times else None

    @property
    def last_iter(self) -> Optional[int]:
        return max(self.train) if self.train else None


def _is_train_record(record: dict) -> bool:
    return 'lr' in record or any(k.startswith('loss') for k in record)


def read_run_log(work_dir: str) -> RunLog:
    """Merge the scalars of every start of the run in ``work_dir``."""
    log = RunLog()
    # mmengine names the folders YYYYMMDD_HHMMSS: sorted = chronological
    for folder in sorted(glob.glob(osp.join(work_dir, '*_*'))):
        stamp = osp.basename(folder)
        if not _TIMESTAMP.match(stamp):
            continue
        text_log = osp.join(folder, f'{stamp}.log')
        if osp.isfile(text_log):
            log.log_files.append(text_log)
        scalars = osp.join(folder, 'vis_data', 'scalars.json')
        if not osp.isfile(scalars):
            continue
        log.scalar_files.append(scalars)
        with open(scalars) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    # the last line of a killed run may be cut short
                    continue
                step = record.pop('step', None)
                if step is None:
                    continue
                if _is_train_record(record):
                    log.train[step] = record
                    continue
                teacher = {k[len(TEACHER_PREFIX):]: v
                           for k, v in record.items()
                           if k.startswith(TEACHER_PREFIX)}
                if teacher:
                    log.teacher[step] = teacher
                metrics = {k: v for k, v in record.items()
                           if '/' in k and not k.startswith(TEACHER_PREFIX)}
                if metrics:
                    log.val[step] = metrics
    return log


def pick_metric(keys: List[str], metric: Optional[str] = None) -> str:
    """The metric to report among the logged ``keys``.

    Args:
        keys (list[str]): logged validation metric keys.
        metric (str, optional): the requested key; a bare name such as
            ``'mAP'`` matches ``'<prefix>/mAP'``.

    Returns:
        str: the key.
    """
    if metric is not None:
        if metric in keys:
            return metric
        matches = [k for k in keys if k.endswith('/' + metric)]
        if len(matches) == 1:
            return matches[0]
        raise MMRSKDError(f'metric "{metric}" was not logged; logged '
                          f'metrics: {", ".join(keys) or "none"} (pass one '
                          'of them as --metric)')
    for suffix in PREFERRED_METRICS:
        for key in keys:
            if key.endswith(suffix):
                return key
    if not keys:
        raise MMRSKDError('no validation metric was logged by any run; '
                          'check val_cfg/val_evaluator in the configs')
    return keys[0]
