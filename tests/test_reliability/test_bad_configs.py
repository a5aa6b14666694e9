"""Broken distillation configs through ``tools/train.py``: each stops before
the first optimizer step with exit status 2 and exactly one ``error:`` line
that names the config key or path at fault, and writes no checkpoint."""
import glob
import os.path as osp

import pytest

from test_reliability.conftest import resume_config, train

BROKEN = {
    'class_count_mismatch': (
        ['model.teacher.bbox_head.num_classes=3'],
        ['teacher predicts 3 classes, student 5', 'num_classes']),
    # the teacher only runs inference: its loss modules never run
    'tap_on_a_train_only_module': (
        ['model.taps.t_cls_loss=teacher.bbox_head.loss_cls'],
        ['taps.t_cls_loss', 'teacher.bbox_head.loss_cls', 'did not run']),
    # the preprocessor runs before the training forward, not inside it
    'tap_outside_the_training_forward': (
        ['model.taps.s_inputs=student.data_preprocessor'],
        ['taps.s_inputs', 'student.data_preprocessor', 'did not run']),
    'connector_channel_mismatch': (
        ['model.connectors.adapt.connector.in_channels=8'],
        ['connectors.adapt', 's_fpn', 'in_channels']),
    'missing_data_root': (
        ['train_dataloader.dataset.data_root=/nonexistent/dota/'],
        ['data_root /nonexistent/dota/ does not exist']),
    'schedule_of_an_unknown_loss': (
        ['model.loss_schedules.loss_pdk.type=ConstantSchedule'],
        ["loss_schedules: ['loss_pdk'] name no distill loss",
         "known losses: ['loss_pkd']"]),
}


@pytest.fixture(scope='module')
def config(tmp_path_factory, dota_root):
    return resume_config(tmp_path_factory.mktemp('bad_configs'), dota_root,
                         'feature', deterministic=False)


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_broken_config_fails_with_one_line(config, tmp_path, capsys, case):
    options, expected = BROKEN[case]
    work_dir = str(tmp_path / 'work')
    with pytest.raises(SystemExit) as exit_info:
        train.main([config, '--work-dir', work_dir, '--cfg-options',
                    *options])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in (captured.out + captured.err).splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, errors
    assert errors[0] in captured.err.splitlines()
    for fragment in expected:
        assert fragment in errors[0]
    assert not glob.glob(osp.join(work_dir, '**', '*.pth'), recursive=True)
    assert not osp.exists(osp.join(work_dir, 'last_checkpoint'))
