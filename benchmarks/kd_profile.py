"""Where a distillation step's extra time goes, per KD term and component.

On the batch of ``kd_overhead.py`` (``--boxes``), these run interleaved,
one after the other in every round, and the medians are printed:

* the distillation step, the student step and the teacher forward (the
  terms of ``kd_overhead.py``'s overhead);
* the distillation step without each KD term in turn (its loss weight
  scheduled to 0, so neither its forward nor its backward runs): the
  difference to the full step is what the term costs, forward and backward
  (terms sharing work, e.g. two TASD terms sharing one region assignment,
  each show only what the other does not also compute);
* with ``--cross``: one pass of every ``cross_forwards`` entry (the teacher
  modules on the student source, forward and backward to the source, as
  in the step), to set the method's own cross-head cost apart.

``--timed`` wraps callables (``module.Class.method``) with timers that sum
their inclusive forward time per distillation step; ``--ops`` prints
``torch.profiler``'s operators of one step by self CPU time.

Example::

    OMP_NUM_THREADS=1 python benchmarks/kd_profile.py CONFIG --ops 20 \\
        --timed mmrskd.models.task_modules.vlr_assigner.VLRAssigner.assign
    # CSAKD: the cross-head pass on its own too
    OMP_NUM_THREADS=1 python benchmarks/kd_profile.py \\
        configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py \\
        --cross
"""
import argparse
import importlib
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mmrskd  # noqa: E402,F401  (compat layer before anything OpenMMLab)
from benchmarks.kd_overhead import (build, synthetic_batch,  # noqa: E402
                                    train_step)
from mmrskd.models.loss_schedules import ConstantSchedule  # noqa: E402
from mmrskd.utils import register_all_modules  # noqa: E402
from mmrskd.utils.cli import exit_on_user_error  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('config', help='distiller config')
    parser.add_argument('--boxes', choices=['realistic', 'random'],
                        default='realistic')
    parser.add_argument('--objects', type=int, default=32)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--cross', action='store_true',
                        help='also time one pass of each cross forward')
    parser.add_argument('--timed', nargs='*', default=[],
                        help='module.Class.method callables to time')
    parser.add_argument('--ops', type=int, default=0,
                        help='print this many profiler operators')
    args = parser.parse_args(argv)
    if args.steps < 10:
        parser.error('--steps must be >= 10 for a stable median')
    return args


class CallTimer:
    """Sums the inclusive time of ``owner.name`` calls (nested calls of the
    same callable are counted once)."""

    def __init__(self, path: str):
        module_path, class_name, self.name = path.rsplit('.', 2)
        self.owner = getattr(importlib.import_module(module_path),
                             class_name)
        self.original = getattr(self.owner, self.name)
        self.total, self.depth = 0.0, 0
        timer = self

        def timed(*args, **kwargs):
            timer.depth += 1
            start = time.perf_counter()
            try:
                return timer.original(*args, **kwargs)
            finally:
                timer.depth -= 1
                if timer.depth == 0:
                    timer.total += time.perf_counter() - start

        setattr(self.owner, self.name, timed)


def cross_pass(distiller, name, inputs, samples):
    """One pass of cross forward ``name``: the student source (recorded by
    a student forward outside the timing) through the teacher modules,
    forward and backward to the source."""
    spec = distiller.cross_forwards[name]
    with torch.no_grad(), distiller.student_taps.recording():
        distiller.student.loss(inputs, samples)
    cache = {}
    source = distiller._resolve(spec['source'], {}, cache)
    leaves = [t.detach().requires_grad_() for t in source]
    distiller.student_taps.clear()
    modules = [distiller.teacher.get_submodule(p) for p in spec['modules']]

    def run():
        x = tuple(leaves)
        for module in modules:
            x = module(x)
        outputs = [t for level in x for t in
                   (level if isinstance(level, (list, tuple)) else [level])]
        torch.autograd.backward(
            outputs, [torch.ones_like(t) for t in outputs])

    return run


def measure(args) -> Dict[str, float]:
    cfg, distiller, distill_wrapper, student_wrapper = build(
        args.config, {}, False, 'cpu')
    inputs, samples = synthetic_batch(distiller, cfg, args.size, args.batch,
                                      'cpu', args.boxes, args.objects)
    timers = [CallTimer(path) for path in args.timed]
    teacher = distiller.teacher

    def teacher_forward():
        with torch.no_grad():
            teacher._forward(inputs, samples)

    def distill_without(name):
        def run():
            distiller.loss_schedules[name] = ConstantSchedule(0.0)
            try:
                train_step(distiller, distill_wrapper, inputs, samples)
            finally:
                del distiller.loss_schedules[name]
        return run

    variants = {
        'distill': lambda: train_step(distiller, distill_wrapper, inputs,
                                      samples),
        'student': lambda: train_step(distiller.student, student_wrapper,
                                      inputs, samples),
        'teacher': teacher_forward,
    }
    for name in distiller.distill_losses:
        if name not in distiller.loss_schedules:
            variants[f'without {name}'] = distill_without(name)
    if args.cross:
        for name in distiller.cross_forwards:
            variants[f'cross {name}'] = cross_pass(distiller, name, inputs,
                                                   samples)
    times: Dict[str, List[float]] = {name: [] for name in variants}
    times.update({f'timed {t.owner.__name__}.{t.name}': [] for t in timers})
    for round_index in range(args.warmup + args.steps):
        for name, run in variants.items():
            for timer in timers:
                timer.total = 0.0
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if round_index < args.warmup:
                continue
            times[name].append(elapsed)
            if name == 'distill':
                for timer in timers:
                    times[f'timed {timer.owner.__name__}.{timer.name}'] \
                        .append(timer.total)
    medians = {name: statistics.median(v) for name, v in times.items()}
    if args.ops:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            variants['distill']()
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=args.ops))
    return medians, sum(len(s.gt_instances) for s in samples)


def report(medians: Dict[str, float], num_gt: int, args) -> None:
    distill = medians['distill']
    base = medians['student'] + medians['teacher']
    print(f'{args.config}: {args.boxes} boxes ({num_gt} GT), '
          f'{torch.get_num_threads()} threads, median of {args.steps} '
          f'rounds after {args.warmup}')
    print('| part | ms | share of the distill step | overhead points |')
    print('|---|---|---|---|')
    print(f'| distill step | {1e3 * distill:.0f} | 1.00 | '
          f'**{distill / base:.2f}** (overhead) |')
    print(f"| student step | {1e3 * medians['student']:.0f} | "
          f"{medians['student'] / distill:.2f} | |")
    print(f"| teacher forward | {1e3 * medians['teacher']:.0f} | "
          f"{medians['teacher'] / distill:.2f} | |")
    for name, value in medians.items():
        if name.startswith('without '):
            cost = distill - value
            print(f'| {name[8:]} (fwd + bwd, by removal) | {1e3 * cost:.0f}'
                  f' | {cost / distill:.2f} | {cost / base:.2f} |')
        elif name.startswith('cross '):
            print(f'| {name} pass (fwd + bwd) | {1e3 * value:.0f} | '
                  f'{value / distill:.2f} | {value / base:.2f} |')
            print(f'| overhead against student + teacher + {name} | | | '
                  f'**{distill / (base + value):.2f}** |')
        elif name.startswith('timed '):
            print(f'| {name[6:]} (fwd, inclusive) | {1e3 * value:.1f} | '
                  f'{value / distill:.2f} | {value / base:.2f} |')


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    medians, num_gt = measure(args)
    report(medians, num_gt, args)


if __name__ == '__main__':
    main()
