"""Train the runs of a sweep one after the other, each in its own process.

A crash of one run is recorded and the sweep goes on. Runs that finished in
an earlier call are skipped; interrupted or failed ones resume from their
own ``last_checkpoint``; runs trained with other settings than the grid now
gives (:data:`~mmrskd.engine.sweep.state.STALE`) stop the sweep before
anything starts unless ``force`` moves their old work dir aside.
"""
import fnmatch
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmrskd.engine.sweep.grid import Sweep, SweepRun, run_fingerprint
from mmrskd.engine.sweep.launch import LaunchOptions, train_command
from mmrskd.engine.sweep.progress import SweepProgress, training_progress
from mmrskd.engine.sweep.state import (BUSY, DONE, FAILED, PENDING, RESUME,
                                       RUNNING, SKIPPED, STALE,
                                       last_checkpoint, mark_finished,
                                       mark_started, run_status)
from mmrskd.utils import MMRSKDError

MANIFEST = 'sweep.json'
TRAIN_OUTPUT = 'sweep_train.log'


def select_runs(runs: Sequence[SweepRun],
                patterns: Optional[Sequence[str]]) -> List[SweepRun]:
    """Runs whose name matches one of the shell-style ``patterns``."""
    if not patterns:
        return list(runs)
    selected = [r for r in runs
                if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
    if not selected:
        raise MMRSKDError(f'--only {" ".join(patterns)} matches no run; run '
                          'names: ' + ', '.join(r.name for r in runs))
    return selected


def write_manifest(sweep: Sweep, fingerprints: Dict[str, str]):
    """Add the sweep's runs to ``<work_dir>/sweep.json`` (runs of earlier
    calls with other names are kept), for the results tables."""
    path = osp.join(sweep.work_dir, MANIFEST)
    manifest = dict(runs={})
    if osp.isfile(path):
        with open(path) as f:
            manifest = json.load(f)
    for run in sweep.runs:
        record = run.to_dict()
        record['config_path'] = osp.abspath(run.config) \
            if '::' not in run.config else run.config
        record['fingerprint'] = fingerprints.get(run.name)
        manifest['runs'][run.name] = record
    manifest['work_dir'] = sweep.work_dir
    if sweep.metric:
        manifest['metric'] = sweep.metric
    os.makedirs(sweep.work_dir, exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=2, default=str)
    os.replace(tmp, path)


def read_manifest(sweep_dir: str) -> dict:
    path = osp.join(sweep_dir, MANIFEST)
    if not osp.isfile(path):
        raise MMRSKDError(f'{sweep_dir}: no {MANIFEST}; give the --work-dir '
                          'of a sweep that ran (tools/sweep.py writes it)')
    with open(path) as f:
        return json.load(f)


def _child_env(options: LaunchOptions):
    """The environment of a training process: the repo of the train script
    importable, as tools/dist_train.sh sets it."""
    env = dict(os.environ)
    repo = osp.dirname(osp.dirname(osp.abspath(options.train_script)))
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (repo, env.get('PYTHONPATH')) if p)
    return env


def _tail(path: str, lines: int = 30) -> str:
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def _stop(process: subprocess.Popen):
    """SIGTERM, then SIGKILL if the run ignores it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
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
        stream: where progress goes. Defaults to stdout.
        live (bool, optional): redraw progress in place (default: on a
            terminal).
        poll_interval (float): seconds between progress updates of a running
            run.
    """

    def __init__(self, sweep: Sweep, options: LaunchOptions, only=None,
                 force=False, stream=None, live=None, poll_interval=2.0):
        options.check()
        self.sweep = sweep
        self.options = options
        self.runs = select_runs(sweep.runs, only)
        self.force = force
        self.stream = stream or sys.stdout
        self.live = live
        self.poll_interval = poll_interval
        self.fingerprints = {run.name: run_fingerprint(run)
                             for run in self.runs}

    def statuses(self) -> Dict[str, str]:
        """Each selected run's status before anything is trained."""
        statuses = {}
        for run in self.runs:
            status = run_status(run.work_dir, self.fingerprints[run.name])
            if self.force and status != BUSY and osp.isdir(run.work_dir):
                status = PENDING
            statuses[run.name] = status
        return statuses

    def plan(self) -> List[dict]:
        """What a call would do: name, status, work dir and command."""
        rows, statuses = [], self.statuses()
        for run in self.runs:
            status = statuses[run.name]
            command = train_command(run, self.options,
                                    resume=status == RESUME)
            rows.append(dict(name=run.name, status=status,
                             work_dir=run.work_dir, command=command))
        return rows

    def run(self) -> Dict[str, str]:
        """Train what needs training.

        Returns:
            dict[str, str]: the final status of each selected run.
        """
        statuses = self.statuses()
        stale = [name for name, s in statuses.items() if s == STALE]
        if stale:
            raise MMRSKDError(
                f'{len(stale)} run(s) were trained with other settings than '
                f'the grid now gives (first: {stale[0]}); use a new '
                '--work-dir, or --force to retrain them')
        write_manifest(self.sweep, self.fingerprints)
        progress = SweepProgress([r.name for r in self.runs], statuses,
                                 stream=self.stream, live=self.live)
        try:
            for run in self.runs:
                if statuses[run.name] in (SKIPPED, BUSY):
                    continue
                statuses[run.name] = self._train(run, statuses[run.name],
                                                 progress)
        finally:
            progress.close()
        return statuses

    def _train(self, run: SweepRun, status: str, progress) -> str:
        if self.force and osp.isdir(run.work_dir):
            old = f'{run.work_dir}.old-{time.strftime("%Y%m%d_%H%M%S")}'
            os.rename(run.work_dir, old)
        resume_from = last_checkpoint(run.work_dir) \
            if status == RESUME else None
        command = train_command(run, self.options,
                                resume=resume_from is not None)
        os.makedirs(run.work_dir, exist_ok=True)
        output = osp.join(run.work_dir, TRAIN_OUTPUT)
        with open(output, 'a') as out:
            out.write(f'\n# {time.strftime("%Y-%m-%d %H:%M:%S")} sweep: '
                      f'{" ".join(command)}\n')
            out.flush()
            process = subprocess.Popen(command, stdout=out,
                                       stderr=subprocess.STDOUT,
                                       env=_child_env(self.options))
        mark_started(run.work_dir, self.fingerprints[run.name], command,
                     resume_from, process.pid)
        started = time.time()
        detail = f'from {osp.basename(resume_from)}' if resume_from else ''
        progress.update(run.name, RUNNING, detail)
        try:
            while process.poll() is None:
                time.sleep(self.poll_interval)
                with open(output, errors='replace') as f:
                    text = f.read()[-4000:]
                progress.update(run.name, detail=' '.join(
                    filter(None, (detail, training_progress(text),
                                  f'{time.time() - started:.0f} s'))))
        except BaseException:
            _stop(process)
            mark_finished(run.work_dir, process.returncode or -1)
            progress.update(run.name, FAILED, 'interrupted')
            raise
        mark_finished(run.work_dir, process.returncode)
        elapsed = f'{time.time() - started:.0f} s'
        if process.returncode == 0:
            progress.update(run.name, DONE, elapsed)
            return DONE
        progress.update(run.name, FAILED,
                        f'exit code {process.returncode} after {elapsed}; '
                        f'log: {output}')
        if progress.live is None:  # a live display would draw over it
            progress.console.print(_tail(output), markup=False,
                                   highlight=False)
        return FAILED
