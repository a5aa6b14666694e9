"""Cost of distillation per config: step time, peak memory, teacher share.

For every distiller config, on one synthetic batch of the config's box type
(``--boxes``), three variants run interleaved in this process:

* the student trained alone (its detection losses, same optimizer);
* the teacher's inference forward (no grad, the whole detector);
* the distillation step (teacher taps, student, connectors, KD losses).

and the script prints::

    overhead      = t(distill step) / (t(student step) + t(teacher forward))
    memory        = peak(distill step) / (peak(student step)
                                          + peak(teacher forward))
    teacher share = t(teacher inside the distill step) / t(distill step)
    KD fwd share  = t(connectors + KD losses, forward, their precompute
                    included) / t(distill step)
    teacher run   = t(teacher inside the distill step) / t(teacher forward)
    early exit    = t(teacher up to its last tap) / t(same, early exit off)

Times are medians over ``--steps`` rounds after ``--warmup``, all at the
training iteration ``--iter`` (default: a steady-state step, after
``grad_balance``'s calibration and between probes). A peak is the
most memory PyTorch's allocator held above its level at the start of the
step (the weights, shared by all variants, are not counted): read from the
profiler's allocation events on the CPU, ``max_memory_allocated`` on CUDA.
``early exit`` < 1 is the saving of stopping the teacher after its last tap
(1.00 when a tap needs the head's outputs).

Boxes: ``realistic`` (default) renders synthetic DOTA scenes
(:func:`mmrskd.testing.scene_batch`: up to ``--objects`` objects an image,
median length ~23 px at 256 px, the dense end of DOTA); ``random`` draws 8
large boxes (15-45% of the side) on noise, the batch of the first tables.

Examples::

    # every method config of the CPU benchmark table (benchmarks/README.md)
    OMP_NUM_THREADS=1 python benchmarks/kd_overhead.py --preset methods
    # overhead against input size and batch size
    OMP_NUM_THREADS=1 python benchmarks/kd_overhead.py --preset scaling
    # the earlier batch of 8 large random boxes
    OMP_NUM_THREADS=1 python benchmarks/kd_overhead.py --preset methods \
        --boxes random
    # any configs, bf16 autocast (the --amp of tools/train.py)
    python benchmarks/kd_overhead.py configs/admd/admd_*.py --amp
    # a setting changed in every config
    OMP_NUM_THREADS=1 python benchmarks/kd_overhead.py configs/ltd/ltd_*.py \
        --cfg-options model.distill_losses.loss_ccd.with_cp=True
"""
import argparse
import json
import statistics
import time
from typing import Dict, List

import torch
from mmengine.config import DictAction
from mmengine.logging import MessageHub

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.registry import MODELS
from mmrskd.testing import (demo_batch, peak_bytes, scene_batch,
                            trains_on_rotated_boxes)
from mmrskd.utils import register_all_modules
from mmrskd.utils.cli import exit_on_user_error
from mmrskd.utils.config import load_config

DEMO_PAIR = 'rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e_12e_' \
    'synthetic-dota.py'
METHOD_CONFIGS = [
    f'configs/fitnet/fitnet_{DEMO_PAIR}',
    f'configs/crosskd/crosskd_{DEMO_PAIR}',
    f'configs/demo/pkd_{DEMO_PAIR}',
    f'configs/fgd/fgd_{DEMO_PAIR}',
    f'configs/admd/admd_{DEMO_PAIR}',
    f'configs/dked/dked_{DEMO_PAIR}',
    f'configs/ltd/ltd_{DEMO_PAIR}',
    'configs/admd/admd_fcos_r18-w16_fcos_r34-w32_12e_synthetic-dior.py',
    'configs/ltd/ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu.py',
    'configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py',
    'configs/dked/dked_lodet_mobilenetv2-w0.5_gghl_cspdarknet-w0.25_12e_'
    'synthetic-dota.py',
]
# (config, [(input size, batch), ...]): one feature-level method, and DKED
# with its non-local correlation, full and pooled
SCALING = [(f'configs/admd/admd_{DEMO_PAIR}', {}),
           (f'configs/dked/dked_{DEMO_PAIR}', {}),
           (f'configs/dked/dked_{DEMO_PAIR}',
            {'model.distill_losses.loss_fcd.pool_size': 16})]
SCALING_POINTS = [(512, 1), (800, 1), (1024, 1), (512, 2), (512, 4)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('configs', nargs='*', help='distiller configs')
    parser.add_argument('--preset', choices=['methods', 'scaling'],
                        help='the configs (and sizes) of benchmarks/README.md')
    parser.add_argument('--size', type=int, default=256, help='H = W')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--boxes', choices=['realistic', 'random'],
                        default='realistic',
                        help='GT of the batch (see the module doc)')
    parser.add_argument('--objects', type=int, default=32,
                        help='objects wanted per image (realistic boxes)')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast on the CPU, fp16 AMP on CUDA')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--iter', type=int, default=1_000_001,
        help='the training iteration the steps run at (MessageHub "iter"): '
        'the default is past grad_balance\'s calibration and off the '
        'probes\' iterations, the step of most of a run; 0 times a probing '
        'calibration step')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the (slower) peak-memory pass')
    parser.add_argument('--out', help='also write the rows to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override settings of every config, e.g. '
        'model.distill_losses.loss_ccd.with_cp=True')
    args = parser.parse_args(argv)
    if args.steps < 10:
        parser.error('--steps must be >= 10 for a stable median')
    if not args.configs and not args.preset:
        parser.error('give configs or --preset')
    return args


def synthetic_batch(distiller, cfg, size, batch, device, boxes='random',
                    num_objects=32):
    """GT boxes of the type the config's pipeline gives the model (rotated
    when it converts boxes to ``rbox``): ``'realistic'`` rendered scenes or
    ``'random'`` boxes (the default: ``peer_kd.py``'s batch)."""
    common = dict(num_images=batch, size=size,
                  num_classes=distiller.student.bbox_head.num_classes,
                  rotated=trains_on_rotated_boxes(cfg))
    if boxes == 'realistic':
        inputs, samples = scene_batch(distiller.student,
                                      num_objects=num_objects, **common)
    else:
        inputs, samples = demo_batch(distiller.student, num_boxes=8,
                                     **common)
    return inputs.to(device), [s.to(device) for s in samples]


def build(config, overrides, amp, device):
    cfg = load_config(config)
    cfg.model.teacher_ckpt = None  # random weights time the same
    cfg.merge_from_dict(overrides)
    distiller = MODELS.build(cfg.model).to(device)
    distiller.init_weights()
    distiller.train()
    from mmengine.optim import build_optim_wrapper
    wrapper_cfg = cfg.optim_wrapper.copy()
    if amp:
        wrapper_cfg.type = 'AmpOptimWrapper' if device.startswith('cuda') \
            else 'CPUBF16OptimWrapper'
    return (cfg, distiller, build_optim_wrapper(distiller, wrapper_cfg),
            build_optim_wrapper(distiller.student, wrapper_cfg))


def train_step(model, optim_wrapper, inputs, samples):
    """What ``BaseModel.train_step`` does after the data preprocessor."""
    with optim_wrapper.optim_context(model):
        losses = model.loss(inputs, samples)
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    for name, value in losses.items():
        if 'loss' in name and not torch.isfinite(torch.as_tensor(
                sum(value) if isinstance(value, list) else value).float()):
            raise FloatingPointError(f'{name} is not finite')


class MethodTimer:
    """Wraps ``distiller.<name>`` to time that part of the step."""

    def __init__(self, distiller, name, sync):
        self.run, self.sync, self.last = getattr(distiller, name), sync, 0.0
        setattr(distiller, name, self)

    def __call__(self, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        result = self.run(*args, **kwargs)
        self.sync()
        self.last = time.perf_counter() - start
        return result


def measure(config, overrides, size, batch, args) -> Dict:
    device = args.device
    cfg, distiller, distill_wrapper, student_wrapper = build(
        config, overrides, args.amp, device)
    inputs, samples = synthetic_batch(distiller, cfg, size, batch, device,
                                      args.boxes, args.objects)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (
        lambda: None)
    MessageHub.get_current_instance().update_info('iter', args.iter)
    teacher_timer = MethodTimer(distiller, 'run_teacher', sync)
    losses_timer = MethodTimer(distiller, 'distillation_losses', sync)
    precompute_timer = MethodTimer(distiller, 'precompute_losses', sync)
    teacher = distiller.teacher
    autocast = torch.autocast(
        device_type=device.split(':')[0],
        dtype=torch.float16 if device.startswith('cuda') else torch.bfloat16,
        enabled=args.amp)

    def teacher_forward():
        with torch.no_grad(), autocast:
            teacher._forward(inputs, samples)

    configured_early_exit = distiller.teacher_early_exit

    def teacher_taps(early_exit):
        distiller.teacher_early_exit = early_exit
        teacher_timer.run(inputs, samples)
        distiller.teacher_taps.clear()
        distiller.teacher_early_exit = configured_early_exit

    variants = {
        'student': lambda: train_step(distiller.student, student_wrapper,
                                      inputs, samples),
        'teacher': teacher_forward,
        'taps_exit': lambda: teacher_taps(True),
        'taps_no_exit': lambda: teacher_taps(False),
        'distill': lambda: train_step(distiller, distill_wrapper, inputs,
                                      samples),
    }
    times: Dict[str, List[float]] = {name: [] for name in variants}
    times['teacher_in_step'], times['kd_losses_in_step'] = [], []
    for round_index in range(args.warmup + args.steps):
        for name, run in variants.items():
            sync()
            start = time.perf_counter()
            run()
            sync()
            if round_index >= args.warmup:
                times[name].append(time.perf_counter() - start)
        if round_index >= args.warmup:
            times['teacher_in_step'].append(teacher_timer.last)
            times['kd_losses_in_step'].append(losses_timer.last +
                                              precompute_timer.last)
    t = {name: statistics.median(values) for name, values in times.items()}
    row = dict(
        config=config, overrides=overrides, size=size, batch=batch,
        boxes=args.boxes, num_gt=sum(len(s.gt_instances) for s in samples),
        amp=args.amp, threads=torch.get_num_threads(), iter=args.iter,
        student_ms=1e3 * t['student'], teacher_ms=1e3 * t['teacher'],
        distill_ms=1e3 * t['distill'],
        overhead=t['distill'] / (t['student'] + t['teacher']),
        teacher_share=t['teacher_in_step'] / t['distill'],
        kd_losses_share=t['kd_losses_in_step'] / t['distill'],
        teacher_run=t['teacher_in_step'] / t['teacher'],
        early_exit=t['taps_exit'] / t['taps_no_exit'])
    if not args.no_memory:
        peaks = {name: peak_bytes(variants[name], device)
                 for name in ('student', 'teacher', 'distill')}
        row.update(
            student_mb=peaks['student'] / 2**20,
            teacher_mb=peaks['teacher'] / 2**20,
            distill_mb=peaks['distill'] / 2**20,
            memory=peaks['distill'] / (peaks['student'] + peaks['teacher']))
    return row


def print_row(row):
    name = row['config'].rsplit('/', 1)[-1].replace('.py', '')
    extra = ' '.join(f'{k.rsplit(".", 1)[-1]}={v}'
                     for k, v in row['overrides'].items())
    memory = f"{row['memory']:.2f}" if 'memory' in row else '-'
    print(f"| {name} {extra} | {row['size']} | {row['batch']} | "
          f"{row['student_ms']:.0f} | {row['teacher_ms']:.0f} | "
          f"{row['distill_ms']:.0f} | **{row['overhead']:.2f}** | "
          f"{row['teacher_share']:.2f} | {row['kd_losses_share']:.2f} | "
          f"{row['teacher_run']:.2f} | "
          f"{row['early_exit']:.2f} | {memory} |", flush=True)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    if args.preset == 'scaling':
        jobs = [(config, {**overrides, **args.cfg_options}, size, batch)
                for config, overrides in SCALING
                for size, batch in SCALING_POINTS]
    else:
        configs = args.configs or METHOD_CONFIGS
        jobs = [(config, dict(args.cfg_options), args.size, args.batch)
                for config in configs]
    print(f'{torch.get_num_threads()} threads, {args.device}, '
          f"{'AMP' if args.amp else 'fp32'}, median of {args.steps} steps "
          f'after {args.warmup}, {args.boxes} boxes')
    print('| config | size | batch | student ms | teacher fwd ms | '
          'distill ms | overhead | teacher share | KD fwd share | teacher run '
          '| early exit | memory |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    rows = []
    for config, overrides, size, batch in jobs:
        rows.append(measure(config, overrides, size, batch, args))
        print_row(rows[-1])
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
