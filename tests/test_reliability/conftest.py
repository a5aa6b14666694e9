"""Distillation configs and process helpers for the reliability tests.

The synthetic DOTA fixture and the dataloader settings are those of
``tests/test_training`` (8 training images at 128 px)."""
import multiprocessing
import os
import os.path as osp
import sys
import traceback

import pytest
import torch
from hypothesis import HealthCheck, settings

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmrskd.testing import tiny_rotated_retinanet_cfg
from test_training.conftest import (CLASSES, REPO, data_settings,  # noqa
                                    dota_root)

sys.path.insert(0, osp.join(REPO, 'tools'))
import train  # noqa: E402

# the fuzz suites' examples per test; raise it for a deeper run, e.g.
# MMRSKD_FUZZ_EXAMPLES=2000 pytest tests/test_reliability -k fuzz
FUZZ_EXAMPLES_VAR = 'MMRSKD_FUZZ_EXAMPLES'


def fuzz_settings(max_examples):
    """Hypothesis settings of the fuzz suites: derandomised (the same inputs
    in every run), no example database, ``max_examples`` unless
    ``MMRSKD_FUZZ_EXAMPLES`` is set."""
    return settings(
        max_examples=int(os.environ.get(FUZZ_EXAMPLES_VAR, max_examples)),
        deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow,
                               HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture])


def _pair(student_head=None):
    student = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16,
                                         num_classes=len(CLASSES)).to_dict()
    teacher = tiny_rotated_retinanet_cfg(base_channels=16, fpn_channels=32,
                                         num_classes=len(CLASSES)).to_dict()
    student['bbox_head'].update(student_head or {})
    return student, teacher


_CONNECTOR = """connectors=dict(adapt=dict(type='MultiLevelConnector',
    num_levels=5, connector=dict(type='ConvBNConnector', in_channels=16,
                                 out_channels=32))),"""

# feature level: PKD on the FPN through a connector, weighted by ADMD's
# adaptive schedule (loss statistics in buffers)
FEATURE_METHOD = """
model = dict(
    type='SingleTeacherDistiller', student={student!r}, teacher={teacher!r},
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    """ + _CONNECTOR + """
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=1.0)),
    loss_mappings=dict(loss_pkd=dict(
        preds_S=dict(source='s_fpn', connector='adapt'), preds_T='t_fpn')),
    loss_schedules=dict(loss_pkd=dict(type='ADMDAdaptiveWeight',
                                      warmup_iters=2, momentum=0.5)))
"""

# head level: LogitKD on the classification outputs, and the student's
# adapted FPN through the frozen teacher head (cross-forward) against the
# teacher's box outputs; the student head uses DDC convolutions whose
# temperature a hook anneals per iteration
HEAD_METHOD = """
model = dict(
    type='SingleTeacherDistiller', student={student!r}, teacher={teacher!r},
    taps=dict(s_fpn='student.neck', s_head='student.bbox_head',
              t_head='teacher.bbox_head'),
    """ + _CONNECTOR + """
    cross_forwards=dict(cross_head=dict(
        source=dict(source='s_fpn', connector='adapt'),
        modules=['bbox_head'])),
    distill_losses=dict(
        loss_logit=dict(type='LogitKDLoss', mode='sigmoid', T=2.0,
                        class_reduction='sum', loss_weight=10.0),
        loss_cross=dict(type='FitNetLoss', loss_weight=0.1)),
    loss_mappings=dict(
        loss_logit=dict(preds_S='s_head[0]', preds_T='t_head[0]'),
        loss_cross=dict(preds_S='cross_head[1]', preds_T='t_head[1]')),
    loss_schedules=dict(
        loss_logit=dict(type='RampSchedule', start_iter=2, end_iter=6,
                        start_value=0.5, end_value=1.0),
        loss_cross=dict(type='ADMDAdaptiveWeight', warmup_iters=3,
                        momentum=0.5)))
custom_hooks = [dict(type='DDCTemperatureHook', start=10, step=2, end=1,
                     by_epoch=False, interval=2)]
"""


def resume_config(tmp_path, data_root, method, deterministic=True,
                  checkpoint_interval=3, max_keep_ckpts=2):
    """A two-epoch distillation config (4 iterations per epoch) with
    random flips, iteration checkpoints and the exact-resume loop."""
    if method == 'feature':
        student, teacher = _pair()
        model = FEATURE_METHOD.format(student=student, teacher=teacher)
    else:
        student, teacher = _pair(dict(conv_cfg=dict(type='DDC')))
        model = HEAD_METHOD.format(student=student, teacher=teacher)
    text = data_settings(data_root, batch_size=2,
                         filter_empty_gt=False) + model + f"""
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
default_hooks = dict(checkpoint=dict(
    type='AtomicCheckpointHook', by_epoch=False,
    interval={checkpoint_interval}, max_keep_ckpts={max_keep_ckpts}))
randomness = dict(seed=0, deterministic={deterministic})
"""
    path = tmp_path / f'{method}.py'
    path.write_text(text)
    return str(path)


@pytest.fixture
def restore_torch_determinism():
    """``randomness.deterministic=True`` switches torch's global flag on;
    switch it back for the tests that follow in this process."""
    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)


def _run_child(argv, arm):
    code = 0  # not killed: the parent reports it
    try:
        arm()
        train.main(argv)
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def train_killed(argv, arm, timeout=300):
    """Run ``tools/train.py argv`` in a forked process (the imports are
    inherited, so no start-up cost) after ``arm()`` has set up, inside that
    process, the point where it SIGKILLs itself; assert it died of SIGKILL.
    """
    child = multiprocessing.get_context('fork').Process(
        target=_run_child, args=(argv, arm))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f'training did not reach the kill point in {timeout} s')
    assert child.exitcode == -9, (
        f'training exited with {child.exitcode} instead of being killed')
