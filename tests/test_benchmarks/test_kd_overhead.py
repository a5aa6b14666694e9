"""benchmarks/kd_overhead.py: the batch of each --boxes choice (the
timings are not in the suite)."""
import glob
from types import SimpleNamespace

import pytest

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.config import Config
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.registry import MODELS
from mmrskd.testing import tiny_rotated_retinanet_cfg
from mmrskd.utils.config import load_config


def rotated_cfg():
    return Config(dict(train_dataloader=dict(dataset=dict(pipeline=[
        dict(type='mmrotate.ConvertBoxType',
             box_type_mapping=dict(gt_bboxes='rbox'))]))))


def test_realistic_boxes_are_the_default(kd_overhead):
    assert kd_overhead.parse_args(['--preset', 'methods']).boxes == \
        'realistic'
    assert kd_overhead.parse_args(
        ['--preset', 'methods', '--boxes', 'random']).boxes == 'random'


def test_cfg_options_reach_every_config(kd_overhead, monkeypatch):
    measured = []
    monkeypatch.setattr(
        kd_overhead, 'measure',
        lambda config, overrides, size, batch, args: measured.append(
            (config, overrides)) or dict(
                config=config, overrides=overrides, size=size, batch=batch,
                student_ms=1, teacher_ms=1, distill_ms=2, overhead=1,
                teacher_share=0, kd_losses_share=0, teacher_run=1,
                early_exit=1))
    kd_overhead.main(['a.py', 'b.py', '--cfg-options', 'model.x.y=True',
                      'model.z=2'])
    assert measured == [(config, {'model.x.y': True, 'model.z': 2})
                        for config in ('a.py', 'b.py')]
    measured.clear()
    kd_overhead.main(['--preset', 'scaling', '--cfg-options',
                      'model.distill_losses.loss_fcd.pool_size=8'])
    assert len(measured) == len(kd_overhead.SCALING) * len(
        kd_overhead.SCALING_POINTS)
    assert all(overrides['model.distill_losses.loss_fcd.pool_size'] == 8
               for _, overrides in measured)


def test_default_iter_is_a_steady_state_step(kd_overhead):
    """The timed steps run after grad_balance's calibration and off its
    probe iterations, on every shipped config that balances its terms."""
    iteration = kd_overhead.parse_args(['--preset', 'methods']).iter
    balanced = [load_config(path).model.grad_balance
                for path in sorted(glob.glob('configs/*/*.py'))
                if load_config(path).get('model', {}).get('grad_balance')]
    assert balanced  # LTD GFL and DKED GGHL carry it
    for balance in balanced:
        assert iteration >= (balance.get('calibration_iters') or 0)
        assert iteration % balance.get('interval', 10) != 0


@pytest.mark.parametrize('boxes', ['realistic', 'random'])
def test_batch_of_each_box_choice(kd_overhead, boxes):
    distiller = SimpleNamespace(
        student=MODELS.build(tiny_rotated_retinanet_cfg()))
    inputs, samples = kd_overhead.synthetic_batch(
        distiller, rotated_cfg(), 256, 2, 'cpu', boxes)
    assert inputs.shape == (2, 3, 256, 256)
    counts = [len(s.gt_instances) for s in samples]
    lengths = [s.gt_instances.bboxes.tensor[:, 2:4].amax(1) for s in samples]
    assert all(isinstance(s.gt_instances.bboxes, RotatedBoxes)
               for s in samples)
    if boxes == 'random':  # 8 boxes of 15-45% of the side
        assert counts == [8, 8]
        assert all(length.min() >= 0.15 * 256 for length in lengths)
    else:  # many small ones
        assert min(counts) > 20
        assert all(length.median() < 0.15 * 256 for length in lengths)
