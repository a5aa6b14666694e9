"""Our distillation against mmdet's own KD, side by side on one LD pair.

mmdet 3.3 ships localisation distillation as a detector (its
``configs/ld/``): ``KnowledgeDistillationSingleStageDetector`` runs the
teacher and hands its box distributions to an ``LDHead``, a GFL head whose
``loss_by_feat_single`` adds ``KnowledgeDistillationKLDivLoss`` (T = 10,
weight 0.25) on the box sides of the ATSS positives, each weighted by the
student's highest class score there and divided by 4 per level. Ours is
``SingleTeacherDistiller`` with :class:`LDLoss` fed the same: the student's
and teacher's ``bbox_pred`` (taps on the heads) and a weight of the
student's score on the positives of the student's own assignment (a tap on
``bbox_head.get_targets``), see :class:`PositiveLDLoss`.

Both run on the narrow GFL pair of the LTD CPU config (R18-w16 student,
R34-w32 teacher), the teacher random and its weights copied into both, the
student's weights too (the teacher's box logits scaled, see
``TEACHER_LOGIT_SCALE``), on the same synthetic batch. The script prints

* each loss of the first batch, ours and mmdet's; mmdet's ``loss_bbox`` and
  ``loss_dfl`` also rescaled to our GFL head's normalisation (mmdet's
  ``LDHead`` does not clamp it, see :func:`gfl_normalisation`); every loss
  must agree to 1e-5 (relative), or the script exits with status 1;
* step time (forward, backward, optimizer update; median of ``--steps``
  rounds after ``--warmup``, the two variants back to back in each round)
  and peak memory (as in ``kd_overhead.py``), with the ratios ours / mmdet's.

Example::

    OMP_NUM_THREADS=1 python benchmarks/peer_kd.py --out peer_kd.json
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mmrskd  # noqa: E402,F401  (compat layer before anything OpenMMLab)
from benchmarks.kd_overhead import (build, synthetic_batch,  # noqa: E402
                                    train_step)
from mmengine.optim import build_optim_wrapper  # noqa: E402

from mmrskd.models.distillers.single_teacher_distiller import (  # noqa: E402
    resolve_model_cfg)
from mmrskd.models.losses import LDLoss  # noqa: E402
from mmrskd.registry import MODELS  # noqa: E402
from mmrskd.testing import peak_bytes  # noqa: E402
from mmrskd.utils import register_all_modules  # noqa: E402
from mmrskd.utils.cli import exit_on_user_error  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'ltd',
                  'ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu.py')
# mmdet's configs/ld/ld_r18-gflv1-r101_fpn_1x_coco.py
LD_T, LD_WEIGHT = 10, 0.25
TOLERANCE = 1e-5
# The random teacher's box logits are about 0.16 (std): at T = 10 its
# distributions and the student's are almost uniform, the KL about 1e-6 a
# side, and its fp32 value is off the float64 one by up to 3e-5 (relative)
# in mmdet's formula and in ours alike (they agree to 1e-14 in float64).
# Scaled by 30 (std about 5, up to 25), peaked like a trained GFL teacher's,
# the two agree to 1e-7.
TEACHER_LOGIT_SCALE = 30.0


class PositiveLDLoss(LDLoss):
    """:class:`LDLoss` on the box sides of the student's positives, weighted
    as mmdet's ``LDHead`` weights them: by the student's highest class
    probability at the position (no gradient), the sum divided by 4 (mmdet's
    ``avg_factor=4.0`` on every level, whose losses it sums).

    Attributes:
        weight_sum (Tensor): the last step's weights summed, mmdet's
            ``avg_factor`` of ``loss_bbox`` and ``loss_dfl`` (see
            :func:`gfl_normalisation`).
    """

    def forward(self, preds_S, preds_T, cls_scores_S, labels):
        """
        Args:
            preds_S (Sequence[Tensor]): the student's ``bbox_pred`` per
                level, ``(N, 4 * (reg_max + 1), H, W)``.
            preds_T (Sequence[Tensor]): the teacher's, same shapes.
            cls_scores_S (Sequence[Tensor]): the student's class logits per
                level, ``(N, C, H, W)``.
            labels (Sequence[Tensor]): the student's assigned labels per
                level, ``(N, H * W)`` (``get_targets``; background is C).

        Returns:
            Tensor: scalar loss.
        """
        # the positives' (image, position) over the levels concatenated;
        # gathered from (N, C, sum of H * W) maps, which concatenate without
        # the transposed copies of whole (N, H, W, C) maps
        images, places = torch.nonzero(
            torch.cat(labels, 1) < cls_scores_S[0].shape[1], as_tuple=True)

        def positives(levels):
            maps = torch.cat([level.flatten(2) for level in levels], 2)
            return maps[images, :, places]

        weight = positives([c.detach() for c in cls_scores_S]).sigmoid()
        weight = weight.amax(1)
        self.weight_sum = weight.sum()
        return super().forward(positives(preds_S), positives(preds_T),
                               weight=weight, avg_factor=4.0)


def gfl_normalisation(weight_sum):
    """The factor that turns mmdet's ``LDHead`` box losses into
    ``GFLHead``'s (our student's head).

    Both divide ``loss_bbox`` and ``loss_dfl`` by ``weight_sum``, the
    student's scores summed over the positives, ``GFLHead`` clamped,
    ``max(weight_sum, 1)``, ``LDHead`` not, ``weight_sum + 1e-6``: they
    differ while ``weight_sum < 1``, e.g. at initialisation, where every
    score is about 0.01 (the classifier's prior).
    """
    return (weight_sum + 1e-6) / max(weight_sum, 1.0)


def ours_overrides():
    """The LTD config's distiller reduced to LD as mmdet computes it (new
    dicts on every call: merging pops their ``_delete_``)."""
    return {
        'model.taps': dict(
            _delete_=True,
            s_head='student.bbox_head',
            t_head='teacher.bbox_head',
            s_targets=dict(model='student', method='bbox_head.get_targets')),
        'model.connectors': dict(_delete_=True),
        'model.distill_losses': dict(
            _delete_=True,
            loss_ld=dict(type=PositiveLDLoss, T=LD_T, reg_max=16,
                         loss_weight=LD_WEIGHT)),
        'model.loss_mappings': dict(
            _delete_=True,
            loss_ld=dict(preds_S='s_head[1]', preds_T='t_head[1]',
                         cls_scores_S='s_head[0]', labels='s_targets[1]')),
        # mmdet's LD weight as it is: no calibration of the LTD terms
        'model.grad_balance': None,
    }


def build_pair(device='cpu'):
    """Our distiller and mmdet's LD detector with identical weights.

    Returns:
        tuple: ``(cfg, ours, ours optim wrapper, mmdet's detector, its optim
        wrapper)``.
    """
    cfg, ours, ours_wrapper, _ = build(CONFIG, ours_overrides(), False,
                                       device)
    with torch.no_grad():
        for param in ours.teacher.bbox_head.gfl_reg.parameters():
            param.mul_(TEACHER_LOGIT_SCALE)
    peer_cfg = resolve_model_cfg(cfg.model.student, 'student')
    peer_cfg.type = 'mmdet.KnowledgeDistillationSingleStageDetector'
    peer_cfg.bbox_head.type = 'mmdet.LDHead'
    peer_cfg.bbox_head.loss_ld = dict(
        type='mmdet.KnowledgeDistillationKLDivLoss', T=LD_T,
        loss_weight=LD_WEIGHT)
    peer_cfg.teacher_config = dict(
        model=resolve_model_cfg(cfg.model.teacher, 'teacher'))
    peer = MODELS.build(peer_cfg)
    # strict loads: the same modules under the same names
    peer.load_state_dict(ours.student.state_dict())
    peer.teacher_model.load_state_dict(ours.teacher.state_dict())
    peer.to(device).train()
    return cfg, ours, ours_wrapper, peer, build_optim_wrapper(
        peer, cfg.optim_wrapper)


def compare_losses(ours, peer, inputs, samples):
    """Every loss of both on one batch (levels summed), and mmdet's
    rescaled to our head's normalisation (:func:`gfl_normalisation`).

    Returns:
        dict[str, dict[str, float]]: loss name -> ``ours``, ``mmdet``,
        ``expected`` (mmdet's, rescaled) and ``rel_diff`` (of ours and
        ``expected``).
    """
    with torch.no_grad():
        losses = [model.loss(inputs, samples) for model in (ours, peer)]
    factor = gfl_normalisation(
        ours.distill_losses.loss_ld.weight_sum.item())
    rows = {}
    for name, value in losses[1].items():
        ours_value = float(sum(losses[0][name]) if isinstance(
            losses[0][name], list) else losses[0][name])
        mmdet_value = float(sum(value))
        expected = mmdet_value * (
            factor if name in ('loss_bbox', 'loss_dfl') else 1.0)
        rows[name] = dict(
            ours=ours_value, mmdet=mmdet_value, expected=expected,
            rel_diff=abs(ours_value - expected) / max(abs(expected), 1e-12))
    return rows


def time_steps(variants, warmup, steps, sync):
    """Median seconds of each variant's step over ``steps`` rounds after
    ``warmup``; each round runs every variant once, the order reversed
    every other round so neither always runs on the other's warm caches."""
    times = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(warmup + steps):
        for name in names if round_index % 2 == 0 else names[::-1]:
            sync()
            start = time.perf_counter()
            variants[name]()
            sync()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--size', type=int, default=256, help='H = W')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', help='also write the results to this JSON')
    args = parser.parse_args(argv)
    if args.steps < 10:
        parser.error('--steps must be >= 10 for a stable median')
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    cfg, ours, ours_wrapper, peer, peer_wrapper = build_pair(args.device)
    inputs, samples = synthetic_batch(ours, cfg, args.size, args.batch,
                                      args.device)

    losses = compare_losses(ours, peer, inputs, samples)
    print(f'{torch.get_num_threads()} threads, {args.device}, batch '
          f'{args.batch} x {args.size} px; first batch (mmdet\'s loss_bbox '
          'and loss_dfl rescaled to GFLHead\'s clamped normalisation, see '
          'gfl_normalisation):')
    print('| loss | ours | mmdet | mmdet rescaled | relative difference |')
    print('|---|---|---|---|---|')
    for name, row in losses.items():
        print(f"| {name} | {row['ours']:.7g} | {row['mmdet']:.7g} | "
              f"{row['expected']:.7g} | {row['rel_diff']:.1e} |")

    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (
        lambda: None)
    variants = {
        'ours': lambda: train_step(ours, ours_wrapper, inputs, samples),
        'mmdet': lambda: train_step(peer, peer_wrapper, inputs, samples),
    }
    seconds = time_steps(variants, args.warmup, args.steps, sync)
    peaks = {name: peak_bytes(run, args.device)
             for name, run in variants.items()}
    result = dict(
        size=args.size, batch=args.batch, device=args.device,
        threads=torch.get_num_threads(), losses=losses,
        step_ms={name: 1e3 * value for name, value in seconds.items()},
        peak_mb={name: value / 2**20 for name, value in peaks.items()},
        time_ratio=seconds['ours'] / seconds['mmdet'],
        memory_ratio=peaks['ours'] / peaks['mmdet'])
    print(f'\nmedian of {args.steps} rounds after {args.warmup}:')
    print('| | step ms | peak MB |')
    print('|---|---|---|')
    for name in variants:
        print(f"| {name} | {result['step_ms'][name]:.0f} | "
              f"{result['peak_mb'][name]:.1f} |")
    print(f"| ours / mmdet | **{result['time_ratio']:.2f}** | "
          f"**{result['memory_ratio']:.2f}** |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    mismatched = [name for name, row in losses.items()
                  if row['rel_diff'] > TOLERANCE]
    if mismatched:
        print(f'losses differ by more than {TOLERANCE} (relative): '
              f'{", ".join(mismatched)}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
