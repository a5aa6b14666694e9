"""Train the runs of a sweep one after the other, each in its own process.

Each run keeps ``<run work dir>/sweep_run.json`` (status, command, pid,
attempts, training time, config fingerprint); from it a later call decides
to skip, resume, retrain, leave alone or refuse each run (the statuses
below; ``docs/sweeps.md``, section 2). A crash of one run is recorded and
the sweep goes on.
"""
import collections
import dataclasses
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
from typing import Dict, List, Optional, Sequence, Tuple

import mmengine
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mmrskd.engine.sweep.grid import Sweep, SweepRun, run_fingerprint
from mmrskd.engine.sweep.launch import LaunchOptions, train_command
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import atomic_write_bytes

MANIFEST = 'sweep.json'
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


def _write_json(data, path: str):
    atomic_write_bytes(json.dumps(data, indent=2, default=str).encode(), path)


def read_state(work_dir: str) -> Optional[dict]:
    """The run's ``sweep_run.json``; None before the sweep first starts it.
    """
    path = osp.join(work_dir, STATE_FILE)
    return mmengine.load(path) if osp.isfile(path) else None


def write_state(work_dir: str, **fields) -> dict:
    """Update the run's ``sweep_run.json`` with ``fields``."""
    state = dict(read_state(work_dir) or {}, **fields)
    _write_json(state, osp.join(work_dir, STATE_FILE))
    return state


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``--resume`` would load, if it exists."""
    pointer = Path(work_dir, 'last_checkpoint')
    path = pointer.read_text().strip() if pointer.is_file() else ''
    return path if path and osp.isfile(path) else None


def _alive(state: dict) -> bool:
    """Whether the process that trains the run still lives; one on another
    host cannot be checked and is taken as alive."""
    if not state.get('pid'):
        return False
    if state.get('host') != socket.gethostname():
        return True
    try:
        os.kill(state['pid'], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def run_status(work_dir: str, fingerprint: Optional[str] = None) -> str:
    """The status of a run before this call touches it: :data:`SKIPPED`,
    :data:`RESUME`, :data:`PENDING`, :data:`BUSY` or, when it was trained
    with another config ``fingerprint``, :data:`STALE`."""
    state = read_state(work_dir)
    if state is None:
        # trained without the sweep: resumable, but never taken as finished
        return RESUME if last_checkpoint(work_dir) else PENDING
    if state.get('status') == RUNNING and _alive(state):
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
        epoch, it = _EPOCH.search(line), _ITER.search(line)
        if epoch or it:
            eta = _ETA.search(line)
            text = (f'epoch {epoch[1]} [{epoch[2]}/{epoch[3]}]' if epoch
                    else f'iter {it[1]}/{it[2]}')
            return f'{text} eta {eta[1]}' if eta else text
    return ''


class SweepProgress:
    """One line per status change of a run and, on a terminal, a rich bar
    over the grid with what the running run is at.

    Args:
        statuses (dict[str, str]): the initial status of each run, in order.
        stream: where to write. Defaults to stdout.
        live (bool, optional): show the bar; default when ``stream`` is a
            terminal.
    """

    def __init__(self, statuses: Dict[str, str], stream=None,
                 live: Optional[bool] = None):
        self.statuses = dict(statuses)
        console = Console(file=stream or sys.stdout, highlight=False,
                          soft_wrap=True)
        self.bar = Progress(
            BarColumn(), MofNCompleteColumn(),
            TextColumn('{task.description}', markup=False), console=console,
            disable=not (console.is_terminal if live is None else live))
        self.task = self.bar.add_task('', total=len(statuses),
                                      completed=self.finished())
        self.bar.start()
        for name in self.statuses:
            self._line(name)

    def finished(self) -> int:
        return sum(s in FINISHED for s in self.statuses.values())

    def print(self, text: str):
        """Print above the bar."""
        self.bar.console.print(text, markup=False, highlight=False)

    def _line(self, name: str, detail: str = ''):
        self.print(f'[sweep {self.finished()}/{len(self.statuses)}] '
                   f'{self.statuses[name]:<8} {name}' +
                   (f'  {detail}' if detail else ''))

    def update(self, name: str, status: Optional[str] = None,
               detail: str = ''):
        """Set a run's status (a line when it changes) and detail text."""
        if status not in (None, self.statuses[name]):
            self.statuses[name] = status
            self._line(name, detail)
        self.bar.update(self.task, completed=self.finished(),
                        description=f'{name}  {detail}')

    def close(self):
        self.bar.stop()
        counts = collections.Counter(self.statuses.values())
        self.print(f'[sweep] {self.finished()}/{len(self.statuses)} runs '
                   'finished  (' + '  '.join(
                       f'{s} {n}' for s, n in sorted(counts.items())) + ')')


def select_runs(runs: Sequence[SweepRun],
                patterns: Optional[Sequence[str]]) -> List[SweepRun]:
    """Runs whose name matches one of the shell-style ``patterns``."""
    selected = [r for r in runs if not patterns or any(
        fnmatch.fnmatchcase(r.name, p) for p in patterns)]
    if not selected:
        raise MMRSKDError(f'--only {" ".join(patterns)} matches no run; run '
                          'names: ' + ', '.join(r.name for r in runs))
    return selected


def write_manifest(sweep: Sweep):
    """Add the sweep's runs to ``<work_dir>/sweep.json`` (runs of earlier
    calls with other names are kept), for the results tables; configs by
    absolute path, so the tables can be made from any folder."""
    path = osp.join(sweep.work_dir, MANIFEST)
    manifest = mmengine.load(path) if osp.isfile(path) else dict(runs={})
    for run in sweep.runs:
        config = run.config if '::' in run.config else osp.abspath(
            run.config)
        manifest['runs'][run.name] = dict(dataclasses.asdict(run),
                                          config_path=config)
    manifest['metric'] = sweep.metric or manifest.get('metric')
    _write_json(manifest, path)


def read_manifest(sweep_dir: str
                  ) -> Tuple[List[SweepRun], Optional[str]]:
    """The runs listed in the ``sweep.json`` of a sweep's work dir (each in
    ``<sweep_dir>/<name>``, wherever the folder is now) and its metric."""
    path = osp.join(sweep_dir, MANIFEST)
    if not osp.isfile(path):
        raise MMRSKDError(f'{sweep_dir}: no {MANIFEST}; give the --work-dir '
                          'of a sweep that ran (tools/sweep.py writes it)')
    manifest = mmengine.load(path)
    return [SweepRun(name, r['config_path'], tuple(map(tuple, r['axes'])),
                     r['cfg_options'], osp.join(sweep_dir, name))
            for name, r in manifest['runs'].items()], manifest.get('metric')


def _child_env(options: LaunchOptions) -> dict:
    """The environment of a training process: the repo of the train script
    importable, as tools/dist_train.sh sets it."""
    env = dict(os.environ)
    repo = osp.dirname(osp.dirname(osp.abspath(options.train_script)))
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, (repo, env.get('PYTHONPATH'))))
    return env


def _stop(process: subprocess.Popen):
    """SIGTERM, then SIGKILL if the run ignores it for 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SweepExecutor:
    """Run a sweep.

    Args:
        sweep (Sweep): the expanded grid.
        options (LaunchOptions): how runs are launched.
        only (list[str], optional): train only runs matching these patterns.
        force (bool): retrain the selected runs from scratch; their existing
            work dirs are renamed ``<dir>.old-<time>``, never deleted.
    """

    def __init__(self, sweep: Sweep, options: LaunchOptions, only=None,
                 force=False):
        options.check()
        self.sweep, self.options, self.force = sweep, options, force
        self.runs = select_runs(sweep.runs, only)
        self.fingerprints = {run.name: run_fingerprint(run)
                             for run in self.runs}

    def status(self, run: SweepRun) -> str:
        """The run's status now; with ``force`` only a busy run is left
        alone."""
        status = run_status(run.work_dir, self.fingerprints[run.name])
        if self.force and status != BUSY and osp.isdir(run.work_dir):
            status = PENDING
        return status

    def statuses(self) -> Dict[str, str]:
        """Each selected run's status before anything is trained."""
        return {run.name: self.status(run) for run in self.runs}

    def plan(self) -> List[dict]:
        """What a call would do: name, status and command of each run."""
        statuses = self.statuses()
        return [dict(name=run.name, status=statuses[run.name],
                     command=train_command(run, self.options,
                                           statuses[run.name] == RESUME))
                for run in self.runs]

    def run(self) -> Dict[str, str]:
        """Train what needs training; the final status of each run."""
        statuses = self.statuses()
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
                if statuses[run.name] in (SKIPPED, BUSY):
                    continue
                # another sweep process may have taken or finished it since
                now = self.status(run)
                if now in (SKIPPED, BUSY):
                    statuses[run.name] = now
                    continue
                statuses[run.name] = self._train(run, statuses[run.name],
                                                 progress)
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
            out.write(f'\n# {time.strftime("%Y-%m-%d %H:%M:%S")} sweep: '
                      f'{shlex.join(command)}\n')
            out.flush()
            process = subprocess.Popen(command, stdout=out,
                                       stderr=subprocess.STDOUT,
                                       env=_child_env(self.options))
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
            _stop(process)
            progress.update(run.name, FAILED, 'interrupted')
            raise
        finally:
            code, seconds = process.returncode, time.time() - state['started']
            write_state(run.work_dir, status=DONE if code == 0 else FAILED,
                        returncode=code, finished=time.time(), pid=None,
                        train_seconds=state.get('train_seconds', 0) + seconds)
        elapsed = f'{seconds:.0f} s'
        if code == 0:
            progress.update(run.name, DONE, elapsed)
            return DONE
        progress.update(run.name, FAILED, f'exit code {code} after '
                        f'{elapsed}; log: {output}')
        tail = Path(output).read_text(errors='replace').splitlines()[-30:]
        progress.print('\n'.join(tail))
        return FAILED
