"""SIGKILL a distillation run mid-epoch, resume it with ``--resume``: the
final weights, buffers (loss-schedule and adaptive-weight state, BN
statistics, DDC temperature) and optimizer state are those of the
uninterrupted run.

Each run: 8 images, batch 2 (4 iterations per epoch), 2 epochs, random
flips, an iteration checkpoint every 3 iterations (``iter_3``, ``iter_6``,
``iter_8``). The killed runs stop after ``iter_3``, mid-epoch 1, so the
resumed run finishes that epoch and crosses an epoch boundary.
"""
import glob
import os
import os.path as osp
import shutil
import signal

import pytest
import torch

from mmrskd.engine.runner import ResumableEpochBasedTrainLoop
from mmrskd.utils.checkpoint import safe_load
from test_reliability.conftest import resume_config, train, train_killed


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.basename(f.read().strip())


def assert_same_training_state(expected_path, actual_path, exact=True):
    expected, actual = safe_load(expected_path), safe_load(actual_path)
    assert actual['meta']['iter'] == expected['meta']['iter'] == 8
    assert actual['meta']['epoch'] == expected['meta']['epoch']
    compare = torch.equal if exact else (
        lambda a, b: torch.allclose(a.double(), b.double(), rtol=1e-5,
                                    atol=1e-7))
    assert actual['state_dict'].keys() == expected['state_dict'].keys()
    different = [key for key, value in expected['state_dict'].items()
                 if not compare(value, actual['state_dict'][key])]
    assert not different, f'{len(different)} tensors differ: {different[:5]}'
    states = expected['optimizer']['state']
    assert states.keys() == actual['optimizer']['state'].keys()
    for index, state in states.items():
        for name, value in state.items():
            assert compare(value, actual['optimizer']['state'][index][name])


@pytest.fixture(scope='module')
def feature_reference(tmp_path_factory, dota_root):
    """The uninterrupted PKD run; ``expected.pth`` is its final checkpoint.
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    tmp_path = tmp_path_factory.mktemp('feature_reference')
    config = resume_config(tmp_path, dota_root, 'feature')
    work_dir = str(tmp_path / 'work')
    try:
        train.main([config, '--work-dir', work_dir])
    finally:
        torch.use_deterministic_algorithms(enabled)
    expected = str(tmp_path / 'expected.pth')
    shutil.copy(osp.join(work_dir, 'iter_8.pth'), expected)
    return config, work_dir, expected


def test_feature_method_killed_between_iterations(feature_reference, tmp_path,
                                                  restore_torch_determinism):
    config, _, expected = feature_reference
    work_dir = str(tmp_path / 'work')

    def kill_after_iteration_5():
        run_iter = ResumableEpochBasedTrainLoop.run_iter

        def run_iter_then_die(self, idx, data_batch):
            run_iter(self, idx, data_batch)
            if self._iter == 5:
                os.kill(os.getpid(), signal.SIGKILL)

        ResumableEpochBasedTrainLoop.run_iter = run_iter_then_die

    train_killed([config, '--work-dir', work_dir], kill_after_iteration_5)
    assert last_checkpoint(work_dir) == 'iter_3.pth'
    assert not osp.exists(osp.join(work_dir, 'iter_6.pth'))

    train.main([config, '--work-dir', work_dir, '--resume'])
    assert_same_training_state(expected, osp.join(work_dir, 'iter_8.pth'))
    resumed = safe_load(osp.join(work_dir, 'iter_8.pth'))['state_dict']
    # the adaptive weight is active (past its warm-up) and was restored
    assert resumed['loss_schedules.loss_pkd.num_updates'] == 8
    assert resumed['loss_schedules.loss_pkd.weight'] > 1


def test_truncated_latest_checkpoint_falls_back_to_the_previous(
        feature_reference, restore_torch_determinism):
    # a non-atomic writer (or a disk failure) left half of iter_8.pth
    config, work_dir, expected = feature_reference
    latest = osp.join(work_dir, 'iter_8.pth')
    with open(latest, 'r+b') as f:
        f.truncate(os.path.getsize(latest) // 2)
    assert last_checkpoint(work_dir) == 'iter_8.pth'

    train.main([config, '--work-dir', work_dir, '--resume'])
    text = open(sorted(glob.glob(osp.join(work_dir, '*', '*.log')))[-1]).read()
    assert 'iter_8.pth is unreadable (' in text
    assert 'resuming from ' + osp.join(work_dir, 'iter_6.pth') in text
    assert 'resumed epoch: 1, iter: 6' in text
    # iterations 7 and 8 again, from iter_6 (epoch 2, batch 2): the same
    assert_same_training_state(expected, latest)


def test_head_method_killed_while_writing_a_checkpoint(
        tmp_path, dota_root, restore_torch_determinism):
    # without the deterministic flag; max_keep_ckpts=1, where mmengine's
    # CheckpointHook deletes iter_3 before writing iter_6
    config = resume_config(tmp_path, dota_root, 'head', deterministic=False,
                           max_keep_ckpts=1)
    reference = str(tmp_path / 'reference')
    train.main([config, '--work-dir', reference])

    work_dir = str(tmp_path / 'work')

    def die_half_way_through_iter_6():
        fsync = os.fsync

        def fsync_or_die(fd):
            name = osp.basename(os.readlink(f'/proc/self/fd/{fd}'))
            if name.startswith('.iter_6.pth.tmp'):
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            fsync(fd)

        os.fsync = fsync_or_die

    train_killed([config, '--work-dir', work_dir], die_half_way_through_iter_6)
    assert last_checkpoint(work_dir) == 'iter_3.pth'
    assert glob.glob(osp.join(work_dir, '.iter_6.pth.tmp-*'))
    assert not osp.exists(osp.join(work_dir, 'iter_6.pth'))
    assert osp.exists(osp.join(work_dir, 'iter_3.pth'))

    train.main([config, '--work-dir', work_dir, '--resume'])
    assert_same_training_state(osp.join(reference, 'iter_8.pth'),
                               osp.join(work_dir, 'iter_8.pth'), exact=False)
    state = safe_load(osp.join(work_dir, 'iter_8.pth'))['state_dict']
    temperatures = [v for k, v in state.items() if k.endswith('temperature')]
    # DDCTemperatureHook: 10 - 2 * (7 // 2) at the last iteration
    assert temperatures and all(t == 4.0 for t in temperatures)
    assert state['loss_schedules.loss_cross.num_updates'] == 8
