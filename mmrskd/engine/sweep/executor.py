"""Train a sweep's runs one after the other, each in its own process; the
``sweep_run.json`` of a run (status, pid, attempts, config fingerprint, ...)
lets a later call skip, resume, retrain, leave alone or refuse it
(``docs/sweeps.md``, section 2)."""
import collections
import fnmatch
import json
import os
import os.path as osp
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import mmengine
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mmrskd.engine.sweep.grid import (Sweep, SweepRun, run_fingerprint,
                                      write_manifest)
from mmrskd.engine.sweep.launch import LaunchOptions, train_command, train_env
from mmrskd.engine.work_dir import last_checkpoint
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import atomic_write_bytes

STATE_FILE = 'sweep_run.json'
TRAIN_OUTPUT = 'sweep_train.log'
POLL_SECONDS = 2.0

PENDING = 'pending'      # nothing trained yet
RESUME = 'resume'        # interrupted or failed after a checkpoint
RUNNING = 'running'      # being trained now
DONE = 'done'            # finished in this sweep call
FAILED = 'failed'        # the training command exited with an error
SKIPPED = 'skipped'      # finished in an earlier call
BUSY = 'busy'            # trained by another sweep process
STALE = 'stale'          # trained with other settings than the grid says
FINISHED = (DONE, FAILED, SKIPPED, BUSY, STALE)

_EPOCH = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\s*\[\s*(\d+)/(\d+)\]')
_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'eta:\s*([\d:]+(?: days?, [\d:]+)?)')


def read_state(work_dir: str) -> Optional[dict]:
    """The run's ``sweep_run.json``; None before the sweep starts it."""
    path = osp.join(work_dir, STATE_FILE)
    return mmengine.load(path) if osp.isfile(path) else None


def write_state(work_dir: str, **fields) -> dict:
    """Update the run's ``sweep_run.json`` with ``fields``."""
    state = dict(read_state(work_dir) or {}, **fields)
    atomic_write_bytes(json.dumps(state, indent=2).encode(),
                       osp.join(work_dir, STATE_FILE))
    return state


def _alive(state: dict) -> bool:
    """Whether the process training the run lives; one on another host
    cannot be checked and counts as alive."""
    try:
        if state.get('host') == socket.gethostname():
            os.kill(state['pid'], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        pass
    return True


def run_status(work_dir: str, fingerprint: Optional[str] = None) -> str:
    """The status of a run before this call touches it: skipped, resume,
    pending, busy or stale (trained with another config ``fingerprint``)."""
    # no state: trained without the sweep, resumable but never taken as done
    state = read_state(work_dir) or {}
    if state.get('status') == RUNNING and state.get('pid') and _alive(state):
        return BUSY
    if fingerprint is not None and state.get('fingerprint') not in (
            None, fingerprint):
        return STALE
    if state.get('status') == DONE:
        return SKIPPED
    return RESUME if last_checkpoint(work_dir) else PENDING


def training_progress(log_text: str) -> str:
    """``'epoch 2 [5/10] eta 0:01:10'`` from the last training line of an
    mmengine log, or ``''``."""
    for line in reversed(log_text.splitlines()):
        epoch, it, eta = (p.search(line) for p in (_EPOCH, _ITER, _ETA))
        if epoch or it:
            text = (f'epoch {epoch[1]} [{epoch[2]}/{epoch[3]}]' if epoch
                    else f'iter {it[1]}/{it[2]}')
            return f'{text} eta {eta[1]}' if eta else text
    return ''


class SweepProgress:
    """A line per status change of a run and, on a terminal (or with
    ``live``), a rich bar of the finished runs showing the running one;
    ``statuses`` are the initial ones in run order, ``stream`` stdout."""

    def __init__(self, statuses: Dict[str, str], stream=None,
                 live: Optional[bool] = None):
        self.console = Console(file=stream or sys.stdout, soft_wrap=True,
                               markup=False, highlight=False)
        self.bar = Progress(
            BarColumn(), MofNCompleteColumn(),
            TextColumn('{task.description}', markup=False),
            console=self.console, disable=not (
                self.console.is_terminal if live is None else live))
        self.task = self.bar.add_task('', total=len(statuses))
        self.bar.start()
        self.statuses = dict.fromkeys(statuses)
        for name, status in statuses.items():
            self.update(name, status)

    @property
    def finished(self) -> int:
        return sum(s in FINISHED for s in self.statuses.values())

    def update(self, name: str, status: Optional[str] = None,
               detail: str = ''):
        """Set a run's status and detail; a line when the status changes."""
        if status not in (None, self.statuses[name]):
            self.statuses[name] = status
            self.console.print(f'[sweep {self.finished}/{len(self.statuses)}]'
                               f' {status:<8} {name}  {detail}'.rstrip())
        self.bar.update(self.task, completed=self.finished,
                        description=f'{name}  {detail}')

    def close(self):
        self.bar.stop()
        counts = '  '.join(f'{s} {n}' for s, n in sorted(
            collections.Counter(self.statuses.values()).items()))
        self.console.print(f'[sweep] {self.finished}/{len(self.statuses)} '
                           f'runs finished  ({counts})')


class SweepExecutor:
    """Run the runs of ``sweep`` whose name matches a shell pattern of
    ``only`` (default: all) as ``options`` launch them; ``force`` retrains
    them from scratch, their work dirs renamed ``<dir>.old-<time>``."""

    def __init__(self, sweep: Sweep, options: LaunchOptions, only=None,
                 force=False):
        options.check()
        self.sweep, self.options, self.force = sweep, options, force
        self.runs = [r for r in sweep.runs if not only or any(
            fnmatch.fnmatchcase(r.name, p) for p in only)]
        if not self.runs:
            raise MMRSKDError(f'--only {" ".join(only)} matches no run; '
                              'runs: ' + ', '.join(r.name for r in sweep.runs))
        self.fingerprints = {run.name: run_fingerprint(run)
                             for run in self.runs}

    def status(self, run: SweepRun) -> str:
        """The run's status now; ``force`` leaves only a busy run alone."""
        status = run_status(run.work_dir, self.fingerprints[run.name])
        forced = self.force and status != BUSY and osp.isdir(run.work_dir)
        return PENDING if forced else status

    def plan(self) -> List[dict]:
        """What a call would do: name, status and command of each run."""
        return [dict(name=run.name, status=status, command=train_command(
            run, self.options, status == RESUME))
            for run, status in zip(self.runs, map(self.status, self.runs))]

    def run(self) -> Dict[str, str]:
        """Train what needs training; the final status of each run."""
        statuses = {run.name: self.status(run) for run in self.runs}
        stale = [name for name, s in statuses.items() if s == STALE]
        if stale:
            raise MMRSKDError(
                f'{len(stale)} run(s) were trained with other settings than '
                f'the grid now gives (first: {stale[0]}); use a new '
                '--work-dir, or --force to retrain them')
        write_manifest(self.sweep)
        progress = SweepProgress(statuses)
        try:
            for run in self.runs:
                if statuses[run.name] not in (SKIPPED, BUSY):
                    # another sweep process may have taken or finished it
                    now = self.status(run)
                    statuses[run.name] = now if now in (SKIPPED, BUSY) \
                        else self._train(run, now, progress)
        finally:
            progress.close()
        return statuses

    def _train(self, run: SweepRun, status: str,
               progress: SweepProgress) -> str:
        """Train one run to its end; its final status."""
        if self.force and osp.isdir(run.work_dir):
            os.rename(run.work_dir,
                      f'{run.work_dir}.old-{time.strftime("%Y%m%d_%H%M%S")}')
        resume_from = last_checkpoint(run.work_dir) \
            if status == RESUME else None
        command = train_command(run, self.options, resume_from is not None)
        os.makedirs(run.work_dir, exist_ok=True)
        output = osp.join(run.work_dir, TRAIN_OUTPUT)
        with open(output, 'a') as out:
            print(f'\n# {time.strftime("%Y-%m-%d %H:%M:%S")} sweep: '
                  f'{shlex.join(command)}', file=out, flush=True)
            process = subprocess.Popen(command, stdout=out,
                                       stderr=subprocess.STDOUT,
                                       env=train_env(self.options))
        state = write_state(
            run.work_dir, status=RUNNING, command=command, pid=process.pid,
            fingerprint=self.fingerprints[run.name], host=socket.gethostname(),
            resumed_from=resume_from, started=time.time(), finished=None,
            returncode=None,
            attempts=(read_state(run.work_dir) or {}).get('attempts', 0) + 1)
        detail = f'from {osp.basename(resume_from)}' if resume_from else ''
        progress.update(run.name, RUNNING, detail)
        try:
            while process.poll() is None:
                time.sleep(POLL_SECONDS)
                text = Path(output).read_text(errors='replace')[-4000:]
                progress.update(run.name, detail=' '.join(filter(None, (
                    detail, training_progress(text),
                    f'{time.time() - state["started"]:.0f} s'))))
        except BaseException:  # Ctrl-C: stop the run too, then the sweep
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # it ignores SIGTERM
                process.kill()
                process.wait()
            progress.update(run.name, FAILED, 'interrupted')
            raise
        finally:
            code, seconds = process.returncode, time.time() - state['started']
            write_state(run.work_dir, status=DONE if code == 0 else FAILED,
                        returncode=code, finished=time.time(), pid=None,
                        train_seconds=state.get('train_seconds', 0) + seconds)
        if code == 0:
            progress.update(run.name, DONE, f'{seconds:.0f} s')
            return DONE
        progress.update(run.name, FAILED, f'exit code {code} after '
                        f'{seconds:.0f} s; log: {output}')
        progress.console.print('\n'.join(Path(output).read_text(
            errors='replace').splitlines()[-30:]))
        return FAILED
