"""What a sweep knows about a run: ``<run work dir>/sweep_run.json``.

The file is written when the run starts and when it ends, so a later sweep
can tell a finished run (skipped) from an interrupted one (resumed from the
``last_checkpoint`` mmengine keeps in the work dir), a failed one (retried)
and one that another sweep process is training right now (left alone).
"""
import json
import os
import os.path as osp
import socket
import time
from typing import Optional

STATE_FILE = 'sweep_run.json'

PENDING = 'pending'      # nothing trained yet
RESUME = 'resume'        # interrupted or failed after a checkpoint
RUNNING = 'running'      # being trained now
DONE = 'done'            # finished in this sweep call
FAILED = 'failed'        # the training command exited with an error
SKIPPED = 'skipped'      # finished in an earlier call
BUSY = 'busy'            # trained by another sweep process
STALE = 'stale'          # trained with other settings than the grid says
STATUSES = (PENDING, RESUME, RUNNING, DONE, FAILED, SKIPPED, BUSY, STALE)


def read_state(work_dir: str) -> Optional[dict]:
    path = osp.join(work_dir, STATE_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_state(work_dir: str, **fields) -> dict:
    """Update the run's state file (atomically) with ``fields``."""
    os.makedirs(work_dir, exist_ok=True)
    state = read_state(work_dir) or {}
    state.update(fields)
    path = osp.join(work_dir, STATE_FILE)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(state, f, indent=2, default=str)
    os.replace(tmp, path)
    return state


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``--resume`` would load, if any."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        path = f.read().strip()
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
        return True
    return True


def run_status(work_dir: str, fingerprint: Optional[str] = None) -> str:
    """The status of a run before this sweep call touches it.

    Args:
        work_dir (str): the run's work dir.
        fingerprint (str, optional): the run's current config fingerprint;
            a finished or interrupted run trained with another one is
            :data:`STALE`.

    Returns:
        str: :data:`SKIPPED`, :data:`RESUME`, :data:`PENDING`, :data:`BUSY`
        or :data:`STALE`.
    """
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


def mark_started(work_dir, fingerprint, command, resumed_from, pid):
    state = read_state(work_dir) or {}
    return write_state(
        work_dir, status=RUNNING, fingerprint=fingerprint, command=command,
        resumed_from=resumed_from, pid=pid, host=socket.gethostname(),
        started=time.time(), finished=None, returncode=None,
        attempts=state.get('attempts', 0) + 1)


def mark_finished(work_dir, returncode):
    state = read_state(work_dir) or {}
    started = state.get('started') or time.time()
    elapsed = state.get('train_seconds', 0.0) + time.time() - started
    return write_state(work_dir, status=DONE if returncode == 0 else FAILED,
                       returncode=returncode, finished=time.time(), pid=None,
                       train_seconds=elapsed)
