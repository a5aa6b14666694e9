"""Every checkpoint a training run loads goes through the weights-only
loader: a pickle payload is refused with one line and never runs, a
truncated or corrupt file gives one line too, and trusting a legacy file is
explicit and warns. (``safe_load`` and mmengine's loader on their own:
``tests/test_utils/test_compat.py``.)"""
import argparse
import io
import os
import os.path as osp
import zipfile

import pytest
import torch
from mmengine.config import Config

from mmrskd.registry import MODELS
from mmrskd.utils.checkpoint import (TRUST_ENV_VAR, CorruptCheckpointError,
                                     UnsafeCheckpointError, safe_load)
from test_reliability.conftest import resume_config, train


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def config(tmp_path_factory, dota_root):
    return resume_config(tmp_path_factory.mktemp('safe_loading'), dota_root,
                         'feature', deterministic=False)


@pytest.fixture
def evil(tmp_path):
    """A checkpoint whose message hub is a pickle payload, and the marker
    file the payload would create."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(dict(meta=dict(epoch=0, iter=1), state_dict={},
                    message_hub=_Payload(str(marker))), path)
    return str(path), marker


def run_and_expect_error(argv, capsys, *fragments):
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize('how', ['--resume', 'load_from', 'teacher_ckpt',
                                 'auto_resume'])
def test_pickle_payload_is_refused_and_never_runs(config, evil, tmp_path,
                                                  capsys, how):
    path, marker = evil
    work_dir = tmp_path / 'work'
    argv = [config, '--work-dir', str(work_dir)]
    if how == '--resume':
        argv += ['--resume', path]
    elif how == 'auto_resume':
        # the work dir's latest checkpoint was replaced: an attack, not a
        # crash, so it must not be skipped for an older one
        work_dir.mkdir()
        (work_dir / 'last_checkpoint').write_text(path)
        argv += ['--resume']
    else:
        argv += ['--cfg-options', f'model.{how}={path}' if how ==
                 'teacher_ckpt' else f'{how}={path}']
    run_and_expect_error(argv, capsys, 'evil.pth: refused to unpickle',
                         'GLOBAL posix.system', '--trust-checkpoint')
    assert not marker.exists()
    assert not list(work_dir.glob('**/*.pth'))


def test_truncated_checkpoint_given_to_resume_is_one_line(config, tmp_path,
                                                          capsys):
    buffer = io.BytesIO()
    torch.save(dict(meta=dict(epoch=0, iter=1), state_dict={}), buffer)
    path = tmp_path / 'iter_1.pth'
    path.write_bytes(buffer.getvalue()[:-100])
    run_and_expect_error(
        [config, '--work-dir', str(tmp_path / 'work'), '--resume',
         str(path)], capsys, 'iter_1.pth: truncated or corrupt checkpoint')


def _teacher_checkpoint(config, path, meta):
    teacher = MODELS.build(Config.fromfile(config).model.teacher)
    torch.save(dict(state_dict=teacher.state_dict(), meta=meta), path)
    return teacher


def test_trusting_a_legacy_teacher_checkpoint_is_explicit_and_warns(
        config, tmp_path, capsys, monkeypatch):
    # old training scripts pickled their argparse namespace
    path = str(tmp_path / 'legacy_teacher.pth')
    teacher = _teacher_checkpoint(config, path, argparse.Namespace(lr=0.1))
    run_and_expect_error(
        [config, '--work-dir', str(tmp_path / 'refused'), '--cfg-options',
         f'model.teacher_ckpt={path}'], capsys, 'legacy_teacher.pth',
        'argparse.Namespace', TRUST_ENV_VAR)

    # --trust-checkpoint sets the variable for the process: restore it
    monkeypatch.setenv(TRUST_ENV_VAR, '0')
    with pytest.warns(UserWarning, match='weights_only=False: any code'):
        train.main([config, '--work-dir', str(tmp_path / 'trusted'),
                    '--trust-checkpoint', '--cfg-options',
                    f'model.teacher_ckpt={path}', 'train_cfg.max_epochs=0'])
    assert os.environ[TRUST_ENV_VAR] == '1'
    monkeypatch.setenv(TRUST_ENV_VAR, '0')
    with pytest.warns(UserWarning, match='weights_only=False'):
        loaded = safe_load(path, trust=True)
    for key, value in teacher.state_dict().items():
        assert torch.equal(loaded['state_dict'][key], value)


def _saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_truncation_anywhere_and_flipped_data_bits_are_corrupt(tmp_path):
    data = _saved(dict(state_dict=dict(w=torch.arange(256.)),
                       meta=dict(iter=1)))
    path = tmp_path / 'ckpt.pth'
    for end in list(range(0, len(data), max(len(data) // 40, 1))) + [
            len(data) - 1]:
        path.write_bytes(data[:end])
        with pytest.raises(CorruptCheckpointError) as error:
            safe_load(path)
        assert str(path) in str(error.value)
        assert '\n' not in str(error.value)
    # a flipped bit in the tensor data: torch would load it silently
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = next(info for info in archive.infolist()
                      if info.filename.endswith('/data/0'))
    offset = member.header_offset + 30 + len(member.filename.encode()) + len(
        member.extra)
    flipped = bytearray(data)
    flipped[offset + 100] ^= 0x10
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptCheckpointError, match='fails its CRC check'):
        safe_load(path)
    path.write_bytes(data)
    assert torch.equal(safe_load(path)['state_dict']['w'], torch.arange(256.))


def test_open_files_load_and_keep_their_position():
    data = _saved(dict(w=torch.ones(3)))
    buffer = io.BytesIO(data)
    assert torch.equal(safe_load(buffer)['w'], torch.ones(3))
    with pytest.raises(CorruptCheckpointError):
        safe_load(io.BytesIO(data[:len(data) // 2]))


def test_unsafe_is_not_reported_as_corrupt(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    assert not marker.exists()
    assert osp.isfile(path)
