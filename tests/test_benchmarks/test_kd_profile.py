"""benchmarks/kd_profile.py: the call timer and its arguments (the
timings are not in the suite)."""
from types import SimpleNamespace

import pytest

CLOCK = [0.0]


class Recursive:
    """Takes 10 time units in each of ``depth`` nested calls."""

    def run(self, depth):
        CLOCK[0] += 10
        if depth > 1:
            self.run(depth - 1)
        return depth


def test_call_timer_counts_nested_calls_once(kd_profile, monkeypatch):
    monkeypatch.setattr(kd_profile, 'time',
                        SimpleNamespace(perf_counter=lambda: CLOCK[0]))
    monkeypatch.setattr(Recursive, 'run', Recursive.run)  # restored after
    timer = kd_profile.CallTimer(f'{__name__}.Recursive.run')
    assert Recursive().run(3) == 3  # the wrapped method still answers
    assert timer.total == 30  # the outer call, not 30 + 20 + 10
    Recursive().run(1)
    assert timer.total == 40  # summed over calls


def test_steps_below_ten_are_a_usage_error(kd_profile, capsys):
    with pytest.raises(SystemExit):
        kd_profile.parse_args(['some_config.py', '--steps', '5'])
    assert '--steps must be >= 10' in capsys.readouterr().err
