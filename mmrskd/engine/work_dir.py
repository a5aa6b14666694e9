"""Reading an mmengine work dir: the checkpoint ``--resume`` would load and
the scalar logs of every (re)start, merged. Shared by sweeps and model-zoo
releases."""
import collections
import glob
import json
import os.path as osp
from pathlib import Path
from typing import Optional

TEACHER_PREFIX = 'teacher/'
# the YYYYMMDD_HHMMSS folder mmengine makes per start: sorted = chronological
STAMP = '[0-9]' * 8 + '_' + '[0-9]' * 6

# a run's train, val and teacher (``teacher/`` removed) records by step, and
# its text logs and scalar files, oldest first
RunLog = collections.namedtuple('RunLog',
                                'train val teacher log_files scalar_files')


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``--resume`` would load, if it exists."""
    pointer = Path(work_dir, 'last_checkpoint')
    path = pointer.read_text().strip() if pointer.is_file() else ''
    return path if path and osp.isfile(path) else None


def read_run_log(work_dir: str) -> RunLog:
    """Merge the ``<stamp>/vis_data/scalars.json`` of every start of the run
    in ``work_dir``, a later start winning for the same step."""
    log = RunLog({}, {}, {}, [], [])
    for folder in sorted(glob.glob(osp.join(work_dir, STAMP))):
        log.log_files.extend(glob.glob(osp.join(folder, '*.log')))
        log.scalar_files.extend(
            glob.glob(osp.join(folder, 'vis_data', 'scalars.json')))
    for path in log.scalar_files:
        for line in Path(path).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a killed run's cut last line
                continue
            step = record.pop('step')
            if 'lr' in record or any(k.startswith('loss') for k in record):
                log.train[step] = record
                continue
            teacher = {k[len(TEACHER_PREFIX):]: v for k, v in record.items()
                       if k.startswith(TEACHER_PREFIX)}
            val = {k: v for k, v in record.items()
                   if '/' in k and not k.startswith(TEACHER_PREFIX)}
            for records, values in ((log.teacher, teacher), (log.val, val)):
                if values:
                    records[step] = values
    return log
