"""Paired, seed-by-seed comparison of two training arms.

A distilled run and the student alone of one seed share the student init and
the data order (see ``SingleTeacherDistiller``), so the per-seed difference
removes most of the seed noise: the evidence for a gain is the paired t
statistic ``mean(d) / (std(d) / sqrt(n))`` over ``d = treated - control``.
"""
import math
import statistics
from typing import Dict, Mapping, Optional

#: A method "beats" its control when the paired mean gain is positive and
#: its t statistic reaches this (issue 13: t >= 2 over 5 seeds).
MIN_T = 2.0


def sample_std(values) -> Optional[float]:
    """:func:`statistics.stdev` (ddof=1), None for fewer than two values
    (undefined, shown as ``-`` in the tables)."""
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else None


def paired_gain(treated: Mapping, control: Mapping,
                min_t: float = MIN_T) -> Dict:
    """Compare two arms on the seeds both have.

    Args:
        treated (Mapping[seed, float]): the metric of each seed of the arm
            under test (e.g. the distilled student).
        control (Mapping[seed, float]): the same for the control (e.g. the
            student alone).
        min_t (float): the t statistic that counts as a gain.

    Returns:
        dict: ``seeds`` (shared, sorted), ``gains`` (per seed), ``n``,
        ``mean``, ``std`` (ddof=1), ``se`` (std / sqrt(n)), ``t``
        (mean / se; +-inf when every gain is the same non-zero number, None
        with fewer than two seeds) and ``beats`` (mean > 0 and t >= min_t).
    """
    seeds = sorted(set(treated) & set(control))
    gains = [treated[s] - control[s] for s in seeds]
    n = len(gains)
    mean = sum(gains) / n if n else None
    std = sample_std(gains)
    se = std / math.sqrt(n) if std is not None else None
    if se is None:
        t = None
    elif se > 0:
        t = mean / se
    else:
        t = math.copysign(math.inf, mean) if mean else 0.0
    return dict(seeds=seeds, gains=gains, n=n, mean=mean, std=std, se=se,
                t=t, beats=bool(mean is not None and mean > 0 and t is not None
                                and t >= min_t))
