"""Loss-weight schedules against hand-computed values."""
import math

import pytest
import torch

from mmrskd.registry import TASK_UTILS
from mmrskd.utils import MMRSKDError


@pytest.mark.parametrize('cfg, expected', [
    (dict(type='ConstantSchedule', value=0.5), {0: 0.5, 50: 0.5, 99: 0.5}),
    (dict(type='WarmupSchedule', warmup_iters=10),
     {0: 0.0, 5: 0.5, 10: 1.0, 80: 1.0}),
    (dict(type='WarmupSchedule', warmup_iters=10, curve='cosine'),
     {0: 0.0, 5: 0.5, 2: (1 - math.cos(math.pi * 0.2)) / 2, 10: 1.0}),
    (dict(type='RampSchedule', start_iter=20, end_iter=60, start_value=2.0,
          end_value=0.0), {0: 2.0, 20: 2.0, 30: 1.5, 60: 0.0, 99: 0.0}),
    # end_iter=None ramps until the run's last iteration (max_iters=100)
    (dict(type='RampSchedule', start_iter=0, start_value=0.0, end_value=1.0),
     {0: 0.0, 25: 0.25, 100: 1.0}),
    (dict(type='StopAfterSchedule', stop_iter=30),
     {0: 1.0, 29: 1.0, 30: 0.0, 99: 0.0}),
])
def test_schedule_values(cfg, expected):
    schedule = TASK_UTILS.build(cfg)
    for cur_iter, value in expected.items():
        assert schedule(cur_iter, 100) == pytest.approx(value), cur_iter
    schedule.update(torch.tensor(1.0))  # the adaptive hook point is a no-op


@pytest.mark.parametrize('cfg, message', [
    (dict(type='RampSchedule', curve='cubic'), r"curve must be one of"),
    (dict(type='RampSchedule', start_iter=10, end_iter=10),
     r'end_iter \(10\) must be after start_iter \(10\)'),
])
def test_bad_schedules(cfg, message):
    with pytest.raises(MMRSKDError, match=message):
        TASK_UTILS.build(cfg)
