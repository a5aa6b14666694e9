"""The CPU operations mmrskd replaced or trimmed, against the originals.

Each pair runs interleaved in this process on the same inputs; the ratio
of the medians is printed (and whether the results agree):

* ``iou``: rotated IoU of Rotated RetinaNet's anchors (256 px, 9 per
  position) with random rotated GT, mmcv's ``box_iou_rotated`` on every pair
  (what mmrotate's ``RBboxOverlaps2D`` did) against ``RBboxOverlaps2D`` as
  the compat layer leaves it (only the pairs whose hulls meet);
* ``step``: a training step of the README demo's student (Rotated RetinaNet
  R18-w16, a synthetic batch) with either calculator, and the share of the
  original step spent in the IoU kernel;
* ``deform``: forward + backward of LTD's LIC deformable 3x3 conv on five
  FPN levels, mmcv's ``DeformConv2d`` against ``GridSampleDeformConv2d``;
* ``ddc``: forward + backward of DKED's response term on the demo pair's
  five 64-channel FPN levels and the heat map of a dense scene
  (``scene_batch``), the DDCs on the full maps against only where the map
  is non-zero (``DDC.forward_at``);
* ``vlr``: the rotated IoUs LTD's VLR assignment computes in one dense
  scene on the 12,276 anchors (the pairs its bound keeps), mmcv's
  ``box_iou_rotated`` against the exact float64 ``aligned_hbox_rbox_iou``;
  then the assignment itself with either for those pairs (the kernel on
  all of them, or only where its value decides): time, peak memory and the
  pairs given to the kernel;
* ``tasd``: LTD's two TASD regions of two dense scenes (the ATSS positives
  and the VLR), each assigner with its own ATSS search against
  ``TASDRegionAssigner``, which shares one per image.

Example::

    OMP_NUM_THREADS=1 python benchmarks/op_speed.py
    OMP_NUM_THREADS=1 python benchmarks/op_speed.py vlr tasd
"""
import argparse
import math
import os.path as osp
import statistics
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mmrskd  # noqa: E402,F401  (compat layer before anything OpenMMLab)
from mmrskd.testing import peak_bytes  # noqa: E402
from mmrskd.utils import register_all_modules  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('parts', nargs='*', metavar='PART',
                        help='iou, step, deform, ddc, vlr and/or tasd '
                        '(default: all)')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args(argv)
    if args.repeats < 10:
        parser.error('--repeats must be >= 10 for a stable median')
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f'unknown parts {sorted(unknown)}: choose from '
                     f'{sorted(PARTS)}')
    args.parts = args.parts or list(PARTS)
    return args


def every_pair_overlaps(self, bboxes1, bboxes2, mode='iou',
                        is_aligned=False):
    """mmrotate's own ``RBboxOverlaps2D.__call__``: the kernel on every
    pair."""
    from mmdet.structures.bbox import get_box_tensor
    from mmrotate.structures.bbox import rbbox_overlaps
    return rbbox_overlaps(get_box_tensor(bboxes1)[..., :5],
                          get_box_tensor(bboxes2)[..., :5], mode, is_aligned)


def interleaved(variants, warmup, repeats):
    """Median seconds of each ``name -> callable``, run in turns."""
    times = {name: [] for name in variants}
    for index in range(warmup + repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title, medians, original, replacement, extra=''):
    print(f'{title}: {original} {1e3 * medians[original]:.1f} ms, '
          f'{replacement} {1e3 * medians[replacement]:.1f} ms, '
          f'{medians[original] / medians[replacement]:.2f}x faster{extra}',
          flush=True)


def rotated_anchors(size=256):
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    generator = AnchorGenerator(
        octave_base_scale=4, scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
        strides=[8, 16, 32, 64, 128])
    sizes = [(math.ceil(size / sh), math.ceil(size / sw))
             for sw, sh in generator.strides]
    anchors = torch.cat(generator.grid_priors(sizes, device='cpu'))
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2
    return torch.cat([centre, anchors[:, 2:] - anchors[:, :2],
                      anchors.new_zeros(len(anchors), 1)], dim=1)


def iou_part(args):
    from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
    gen = torch.Generator().manual_seed(0)
    anchors = rotated_anchors()
    gts = torch.cat([torch.rand(12, 2, generator=gen) * 256,
                     torch.rand(12, 2, generator=gen) * 40 + 4,
                     (torch.rand(12, 1, generator=gen) - 0.5) * math.pi], 1)
    calculator = RBboxOverlaps2D()
    medians = interleaved({
        'every pair': lambda: every_pair_overlaps(None, anchors, gts),
        'hulls meet': lambda: calculator(anchors, gts)}, args.warmup,
        args.repeats)
    same = torch.equal(every_pair_overlaps(None, anchors, gts),
                       calculator(anchors, gts))
    report(f'rotated IoU, {len(anchors)} anchors x {len(gts)} GT', medians,
           'every pair', 'hulls meet', f' (identical: {same})')


def step_part(args):
    from mmengine.optim import build_optim_wrapper
    from mmrotate.models.task_modules.assigners import RBboxOverlaps2D

    from mmrskd.registry import MODELS
    from mmrskd.testing import demo_batch
    from mmrskd.utils.config import load_config
    cfg = load_config(
        'configs/demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    inputs, samples = demo_batch(model, num_images=4, size=256, num_boxes=8,
                                 num_classes=5, rotated=True)
    pruned = RBboxOverlaps2D.__call__
    kernel_time = [0.0]

    def timed_every_pair(*call_args, **kwargs):
        start = time.perf_counter()
        result = every_pair_overlaps(*call_args, **kwargs)
        kernel_time[0] += time.perf_counter() - start
        return result

    def step(calculator):
        RBboxOverlaps2D.__call__ = calculator
        try:
            losses = model.loss(inputs, samples)
            wrapper.update_params(model.parse_losses(losses)[0])
        finally:
            RBboxOverlaps2D.__call__ = pruned

    kernel_time[0] = 0.0
    medians = interleaved({
        'every pair': lambda: step(timed_every_pair),
        'hulls meet': lambda: step(pruned)}, args.warmup, args.repeats)
    share = kernel_time[0] / (args.warmup + args.repeats) / medians[
        'every pair']
    report('Rotated RetinaNet R18-w16 training step, 4 x 256 px', medians,
           'every pair', 'hulls meet',
           f'; the IoU took {share:.0%} of the original step')


def deform_part(args):
    from mmcv.ops import DeformConv2d

    from mmrskd.models.layers.deform_conv import GridSampleDeformConv2d
    torch.manual_seed(0)
    for channels in (32, 64):
        mmcv_conv = DeformConv2d(channels, channels, 3, padding=1)
        ours = GridSampleDeformConv2d(channels, channels, 3, padding=1)
        ours.weight.data.copy_(mmcv_conv.weight.data)
        levels = [torch.randn(2, channels, 256 // s, 256 // s,
                              requires_grad=True)
                  for s in (8, 16, 32, 64, 128)]
        offsets = [torch.randn(2, 18, *x.shape[-2:], requires_grad=True)
                   for x in levels]

        def run(conv):
            sum(conv(x, o).sum() for x, o in zip(levels, offsets)).backward()

        medians = interleaved({'mmcv': lambda: run(mmcv_conv),
                               'grid_sample': lambda: run(ours)},
                              args.warmup, args.repeats)
        with torch.no_grad():
            gap = max((mmcv_conv(x, o) - ours(x, o)).abs().max().item()
                      for x, o in zip(levels, offsets))
        report(f'LIC deformable 3x3 conv fwd+bwd, 5 levels, {channels} ch',
               medians, 'mmcv', 'grid_sample',
               f' (max output difference {gap:.1e})')


def dense_scene(num_images):
    """GT of rendered synthetic DOTA scenes, rotated (``scene_batch``)."""
    from mmrskd.registry import MODELS
    from mmrskd.testing import scene_batch, tiny_rotated_retinanet_cfg
    _, samples = scene_batch(MODELS.build(tiny_rotated_retinanet_cfg()),
                             num_images=num_images)
    return [sample.gt_instances for sample in samples]


def ddc_part(args):
    from mmrskd.registry import MODELS
    torch.manual_seed(0)
    loss = MODELS.build(dict(
        type='DKEDFeatureResponseLoss', in_channels=(64, ) * 5,
        student_channels=(64, ) * 5, strides=(8, 16, 32, 64, 128),
        assigner=dict(type='GGHLAssigner',
                      level_size_thresholds=(64, 128, 256, 512),
                      ref_img_size=1024, window_radius_max=(4, 3, 2, 2, 2))))
    sizes = [(256 // s, 256 // s) for s in (8, 16, 32, 64, 128)]
    feats_S = [torch.randn(2, 64, *size, requires_grad=True)
               for size in sizes]
    feats_T = [torch.randn(2, 64, *size) for size in sizes]
    heatmaps = loss._heatmaps(feats_T, None, dense_scene(2), None)

    def full_maps():
        # the formula on whole maps, as the loss computed it before
        total = 0
        for level, (feat_S, feat_T, heatmap) in enumerate(
                zip(feats_S, feats_T, heatmaps)):
            response_T, response_S = loss._responses(level, feat_S, feat_T)
            total = total + (heatmap * (response_T - response_S)).pow(
                2).sum() / heatmap.sum().clamp(min=1)
        return total

    def at_nonzero():
        return loss(feats_S, feats_T, batch_targets=[
            dict(heatmap=h.flatten(2).transpose(1, 2)) for h in heatmaps])

    medians = interleaved({'full maps': lambda: full_maps().backward(),
                           'G > 0 only': lambda: at_nonzero().backward()},
                          args.warmup, args.repeats)
    gap = (full_maps() - at_nonzero()).abs().item() / full_maps().item()
    share = [f'{(h > 0).float().mean().item():.2f}' for h in heatmaps]
    report('DKED response term fwd+bwd, 5 levels, 64 ch', medians,
           'full maps', 'G > 0 only',
           f' (G > 0 on {", ".join(share)} of the cells; relative '
           f'difference of the loss {gap:.1e})')


def dense_anchors():
    """The 12,276 horizontal anchors ``(P, 4)`` of ``rotated_anchors`` and
    their count per level."""
    anchors = rotated_anchors()
    priors = torch.cat([anchors[:, :2] - anchors[:, 2:4] / 2,
                        anchors[:, :2] + anchors[:, 2:4] / 2], dim=1)
    return priors, [9 * (256 // s)**2 for s in (8, 16, 32, 64, 128)]


def kernel_iou(hboxes, rboxes):
    """mmcv's kernel (through mmrotate) on horizontal and rotated pairs."""
    from mmdet.structures.bbox import HorizontalBoxes
    from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
    return RBboxOverlaps2D()(HorizontalBoxes(hboxes).convert_to('rbox'),
                             rboxes, is_aligned=True).double()


def vlr_part(args):
    from mmengine.structures import InstanceData
    from mmrotate.models.task_modules.assigners import RBboxOverlaps2D

    from mmrskd.models.task_modules import VLRAssigner, vlr_assigner
    priors, counts = dense_anchors()
    gt = dense_scene(1)[0]
    assigner, exact_iou = VLRAssigner(), vlr_assigner.aligned_hbox_rbox_iou
    kept = []

    def keeping(hboxes, rboxes):
        kept.append((hboxes, rboxes))
        return exact_iou(hboxes, rboxes)

    def assign(iou):
        vlr_assigner.aligned_hbox_rbox_iou = iou
        try:
            return assigner.assign(InstanceData(priors=priors), counts, gt)
        finally:
            vlr_assigner.aligned_hbox_rbox_iou = exact_iou

    assign(keeping)
    hboxes, rboxes = kept[0]
    medians = interleaved({'kernel': lambda: kernel_iou(hboxes, rboxes),
                           'exact': lambda: exact_iou(hboxes, rboxes)},
                          args.warmup, args.repeats)
    gap = (kernel_iou(hboxes, rboxes) - exact_iou(hboxes, rboxes)).abs()
    report(f'rotated IoU of the {len(hboxes)} pairs VLR keeps in a dense '
           'scene', medians, 'kernel', 'exact',
           f' (max difference {gap.max().item():.1e})')

    variants = {'kernel': lambda: assign(kernel_iou),
                'exact': lambda: assign(exact_iou)}
    medians = interleaved(variants, args.warmup, args.repeats)
    peaks = {name: peak_bytes(run, 'cpu') / 2**20
             for name, run in variants.items()}
    kernel = RBboxOverlaps2D.__call__

    def kernel_pairs(run):
        """The pairs ``run`` gives to the kernel, and its result."""
        counted = [0]

        def counting(self, bboxes1, *call_args, **kwargs):
            counted[0] += len(bboxes1)
            return kernel(self, bboxes1, *call_args, **kwargs)

        RBboxOverlaps2D.__call__ = counting
        try:
            result = run()
        finally:
            RBboxOverlaps2D.__call__ = kernel
        return counted[0], result

    (kernel_count, kernel_result), (exact_count, exact_result) = (
        kernel_pairs(run) for run in variants.values())
    same = torch.equal(kernel_result.gt_inds, exact_result.gt_inds)
    report(f'VLR assignment, {len(priors)} anchors x {len(gt)} GT', medians,
           'kernel', 'exact',
           f'; peak {peaks["kernel"]:.1f} -> {peaks["exact"]:.1f} MB; '
           f'{kernel_count} -> {exact_count} of '
           f'{len(priors) * len(gt)} pairs to the kernel (same region: '
           f'{same})')


def tasd_part(args):
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData

    from mmrskd.registry import TASK_UTILS
    batch_gt = dense_scene(2)
    regions = TASK_UTILS.build(dict(
        type='TASDRegionAssigner',
        prior_generator=dict(
            type='mmdet.AnchorGenerator', octave_base_scale=4,
            scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
            strides=[8, 16, 32, 64, 128])))
    sizes = [(256 // s, 256 // s) for s in (8, 16, 32, 64, 128)]
    priors, counts, _ = regions.priors(sizes, len(batch_gt), None, 'cpu')

    def shared():
        return regions(['pos', 'vlr'], sizes, batch_gt)

    def each_its_own():
        # what TASDRegionAssigner did per region: a search per assigner
        rotated = HorizontalBoxes(priors).convert_to('rbox')
        return {
            'pos': [regions.rbox_assigner.assign(
                InstanceData(priors=rotated), counts, gt).gt_inds > 0
                for gt in batch_gt],
            'vlr': [regions.vlr_assigner.assign(
                InstanceData(priors=priors), counts, gt).gt_inds > 0
                for gt in batch_gt]}

    medians = interleaved({'own searches': each_its_own,
                           'one search': shared}, args.warmup, args.repeats)
    ours, theirs = shared(), each_its_own()
    same = all(torch.equal(torch.cat(ours[region], dim=1),
                           torch.stack(theirs[region]))
               for region in ('pos', 'vlr'))
    report(f'TASD pos + vlr regions, 2 dense scenes '
           f'({sum(len(gt) for gt in batch_gt)} GT)', medians,
           'own searches', 'one search', f' (same regions: {same})')


PARTS = dict(iou=iou_part, step=step_part, deform=deform_part, ddc=ddc_part,
             vlr=vlr_part, tasd=tasd_part)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    print(f'{torch.get_num_threads()} threads, median of {args.repeats}')
    for part in args.parts:
        PARTS[part](args)


if __name__ == '__main__':
    main()
