"""The exported student costs exactly what the plain student costs.

For every distiller config: train-time distiller → ``student_checkpoint``
(what ``tools/model_converters/distill_to_student.py`` writes) → loaded
strictly into the student built from its own config. Prints, side by side:

* parameters and FLOPs (mmengine's counter, the test input size) of the
  exported student and of a freshly built plain student;
* inference latency (``tensor`` forward, no grad) of the two, interleaved,
  median of ``--repeats``: the ratio should be 1.00 ± noise;
* whether anything but detector weights is left (KD modules, teacher).

Example::

    OMP_NUM_THREADS=1 python benchmarks/exported_student.py
"""
import argparse
import statistics
import time

import torch

import mmrskd  # noqa: F401  (compat layer before anything OpenMMLab)
from mmrskd.models.distillers.single_teacher_distiller import \
    resolve_model_cfg
from mmrskd.models.utils.complexity import model_complexity, test_input_shape
from mmrskd.registry import MODELS
from mmrskd.utils import register_all_modules
from mmrskd.utils.cli import exit_on_user_error
from mmrskd.utils.checkpoint import student_checkpoint
from mmrskd.utils.config import load_config

DEMO_PAIR = 'rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e_12e_' \
    'synthetic-dota.py'
CONFIGS = [
    f'configs/admd/admd_{DEMO_PAIR}',
    f'configs/dked/dked_{DEMO_PAIR}',
    f'configs/ltd/ltd_{DEMO_PAIR}',
    'configs/csakd/csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py',
    'configs/dked/dked_lodet_mobilenetv2-w0.5_gghl_cspdarknet-w0.25_12e_'
    'synthetic-dota.py',
]
KD_PREFIXES = ('teacher.', 'connectors.', 'distill_losses.', 'student.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('configs', nargs='*', default=CONFIGS)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    args = parser.parse_args(argv)
    if args.repeats < 10:
        parser.error('--repeats must be >= 10 for a stable median')
    return args


def exported_and_plain(config):
    """The exported student (weights of a distiller after its DDC / KD
    modules ran a step) and the plain student, both built from the
    student's config."""
    cfg = load_config(config)
    cfg.model.teacher_ckpt = None
    distiller = MODELS.build(cfg.model)
    distiller.init_weights()
    checkpoint = student_checkpoint(dict(state_dict=distiller.state_dict()))
    student_cfg = resolve_model_cfg(cfg.model.student, 'model.student')
    exported = MODELS.build(student_cfg)
    exported.load_state_dict(checkpoint['state_dict'], strict=True)
    plain = MODELS.build(student_cfg)
    plain.init_weights()
    shape = test_input_shape(cfg) or (256, 256)
    return exported.eval(), plain.eval(), checkpoint, shape


def latencies(exported, plain, shape, warmup, repeats):
    """Median latencies of ``exported`` and ``plain``, interleaved (the
    order flips every round: the first of a pair runs on colder caches)."""
    inputs = torch.randn(1, 3, *shape)
    times = {'exported': [], 'plain': []}
    pair = [('exported', exported), ('plain', plain)]
    with torch.no_grad():
        for index in range(warmup + repeats):
            for name, model in pair[::1 if index % 2 else -1]:
                start = time.perf_counter()
                model._forward(inputs)
                if index >= warmup:
                    times[name].append(time.perf_counter() - start)
    exported_ms, plain_ms = (1e3 * statistics.median(times[name])
                             for name in ('exported', 'plain'))
    return exported_ms, plain_ms


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    print(f'{torch.get_num_threads()} threads, median of {args.repeats}')
    print('| config | params exported / plain | FLOPs exported / plain | '
          'latency ms exported / plain | ratio | KD keys left |')
    print('|---|---|---|---|---|---|')
    for config in args.configs:
        exported, plain, checkpoint, shape = exported_and_plain(config)
        complexity = {name: model_complexity(model, shape)
                      for name, model in (('exported', exported),
                                          ('plain', plain))}
        exported_ms, plain_ms = latencies(exported, plain, shape,
                                          args.warmup, args.repeats)
        left = [k for k in checkpoint['state_dict'] if k.startswith(
            KD_PREFIXES)]
        name = config.rsplit('/', 1)[-1].replace('.py', '')
        print(f"| {name} | {complexity['exported']['params']:,} / "
              f"{complexity['plain']['params']:,} | "
              f"{complexity['exported']['flops'] / 1e9:.4f}G / "
              f"{complexity['plain']['flops'] / 1e9:.4f}G | "
              f'{exported_ms:.1f} / {plain_ms:.1f} | '
              f'**{exported_ms / plain_ms:.2f}** | {len(left)} |', flush=True)


if __name__ == '__main__':
    main()
