"""AtomicCheckpointHook and the atomic writers, without training: a failed
write never replaces or deletes a good checkpoint, and auto-resume skips an
unreadable latest checkpoint (but not a malicious one)."""
import io
import os
import time
from collections import deque

import pytest
import torch
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub

from mmrskd.engine.hooks import AtomicCheckpointHook
from mmrskd.registry import HOOKS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import (AtomicLocalBackend,
                                     UnsafeCheckpointError, atomic_save,
                                     safe_load)


class _Unpicklable:

    def __reduce__(self):
        raise RuntimeError('serialisation failed half-way')


def test_failed_atomic_save_keeps_the_old_file(tmp_path):
    path = tmp_path / 'iter_3.pth'
    atomic_save(dict(w=torch.ones(2)), path)
    with pytest.raises(RuntimeError, match='half-way'):
        atomic_save(dict(w=torch.zeros(1000), bad=_Unpicklable()), path)
    assert torch.equal(safe_load(path)['w'], torch.ones(2))
    assert os.listdir(tmp_path) == ['iter_3.pth']  # no temporary left


def test_atomic_backend_writes_bytes_and_text(tmp_path):
    backend = AtomicLocalBackend()
    backend.put(b'\x00\x01', str(tmp_path / 'a' / 'b.bin'))
    backend.put_text('iter_6.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'a' / 'b.bin').read_bytes() == b'\x00\x01'
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_6.pth'
    assert sorted(os.listdir(tmp_path)) == ['a', 'last_checkpoint']


def test_hook_uses_the_atomic_backend_for_local_folders_only():
    local = HOOKS.build(dict(type='AtomicCheckpointHook', interval=1))
    assert local.backend_args == dict(backend='mmrskd_atomic_local')
    remote = HOOKS.build(dict(type='AtomicCheckpointHook', interval=1,
                              out_dir='s3://bucket/ckpts'))
    assert remote.backend_args is None
    assert isinstance(local, CheckpointHook)


class _Runner:
    """What ``_save_checkpoint_with_step`` uses of a runner; saving the new
    checkpoint fails (a crash while writing it)."""

    def __init__(self, work_dir):
        self.work_dir = str(work_dir)
        self.message_hub = MessageHub.get_instance('atomic_hook_test')

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        raise RuntimeError('killed while writing ' + filename)


@pytest.mark.parametrize('hook_type, keeps_old', [
    (AtomicCheckpointHook, True),
    (CheckpointHook, False),  # mmengine deletes before it writes
])
def test_expired_checkpoint_is_deleted_only_after_the_new_one(
        tmp_path, hook_type, keeps_old):
    old = tmp_path / 'iter_3.pth'
    atomic_save(dict(meta=dict(iter=3), state_dict={}), old)
    hook = hook_type(interval=3, by_epoch=False, max_keep_ckpts=1)
    hook.out_dir = str(tmp_path)
    hook.file_backend = AtomicLocalBackend()
    hook.keep_ckpt_ids = deque([3], 1)
    runner = _Runner(tmp_path)
    with pytest.raises(RuntimeError, match='killed while writing iter_6'):
        hook._save_checkpoint_with_step(runner, 6, dict(iter=6))
    assert old.exists() == keeps_old


def _checkpoint(path, iter_, age):
    torch.save(dict(meta=dict(iter=iter_), state_dict={}), path)
    mtime = time.time() - age
    os.utime(path, (mtime, mtime))
    return str(path)


def _work_dir(tmp_path, latest):
    (tmp_path / 'last_checkpoint').write_text(latest)
    return str(tmp_path)


def test_readable_latest_checkpoint_is_used_as_is(tmp_path):
    latest = _checkpoint(tmp_path / 'iter_6.pth', 6, 0)
    hook = AtomicCheckpointHook(interval=3)
    assert hook._readable_latest_checkpoint(_work_dir(tmp_path, latest)) \
        is None


@pytest.mark.parametrize('damage', ['truncated', 'empty_file', 'missing',
                                    'empty_pointer'])
def test_unreadable_latest_falls_back_to_newest_readable(tmp_path, damage):
    _checkpoint(tmp_path / 'iter_2.pth', 2, 30)
    previous = _checkpoint(tmp_path / 'iter_4.pth', 4, 20)
    # newer, but a plain student export, not a training checkpoint
    torch.save(dict(state_dict={}), tmp_path / 'student.pth')
    latest = _checkpoint(tmp_path / 'iter_6.pth', 6, 0)
    data = open(latest, 'rb').read()
    if damage == 'truncated':
        open(latest, 'wb').write(data[:len(data) // 2])
    elif damage == 'empty_file':
        open(latest, 'wb').close()
    elif damage == 'missing':
        os.remove(latest)
    hook = AtomicCheckpointHook(interval=3)
    work_dir = _work_dir(tmp_path, '' if damage == 'empty_pointer' else
                         latest)
    expected = previous if damage != 'empty_pointer' else latest
    assert hook._readable_latest_checkpoint(work_dir) == expected


def test_no_readable_checkpoint_is_a_one_line_error(tmp_path):
    latest = str(tmp_path / 'iter_6.pth')
    open(latest, 'wb').write(b'PK\x03\x04 not a whole archive')
    with pytest.raises(MMRSKDError) as error:
        AtomicCheckpointHook(interval=3)._readable_latest_checkpoint(
            _work_dir(tmp_path, latest))
    message = str(error.value)
    assert '\n' not in message
    assert 'iter_6.pth is unreadable' in message
    assert 'no other checkpoint' in message


class _Payload:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_malicious_latest_checkpoint_is_not_skipped(tmp_path):
    _checkpoint(tmp_path / 'iter_3.pth', 3, 10)
    marker = tmp_path / 'pwned'
    evil = str(tmp_path / 'iter_6.pth')
    buffer = io.BytesIO()
    torch.save(dict(meta=dict(iter=6), state_dict={},
                    message_hub=_Payload(str(marker))), buffer)
    open(evil, 'wb').write(buffer.getvalue())
    with pytest.raises(UnsafeCheckpointError, match='GLOBAL posix.system'):
        AtomicCheckpointHook(interval=3)._readable_latest_checkpoint(
            _work_dir(tmp_path, evil))
    assert not marker.exists()
