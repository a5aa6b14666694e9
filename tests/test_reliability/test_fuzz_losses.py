"""Hypothesis fuzzing of every loss registered from ``mmrskd.models.losses``.

Parametrised over the registry, so a new loss is picked up: a loss with the
distiller contract (``forward(preds_S, preds_T, ...)``) is fuzzed from its
signature (options per loss in ``PAIR_OPTIONS``, ``in_channels`` filled
when the constructor needs it); ``RotatedIoULoss``, ``LTDCCDLoss`` and
``LTDTASDLoss`` have their own input generators; any other registered
module is skipped with the reason.

Drawn per example: batch size, number of levels, channels and map sizes
(down to 1x1), the dtype (fp32, fp16, bf16), the value regime of the
student and of the teacher (normal, extreme logits, constant maps, zeros,
values that underflow in half precision), weights/masks (all-zero
included), and the ground truth (empty, all outside the image, zero-area
and degenerate rotated boxes, random horizontal, rotated or quadrilateral
boxes). Every loss must be a finite scalar with finite gradients for the
student inputs (and its own parameters).

Examples are derandomised (the same inputs in every run) and bounded by
``MAX_EXAMPLES`` per loss; ``MMRSKD_FUZZ_EXAMPLES`` overrides it.
"""
import inspect
import math

import pytest
import torch
from hypothesis import given, reject
from hypothesis import strategies as st
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes

import mmrskd.models.losses  # noqa: F401  (registers the losses)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError
from test_reliability.conftest import fuzz_settings

MAX_EXAMPLES = 25
FUZZ = fuzz_settings(MAX_EXAMPLES)

# constructor variants drawn per example; a loss absent here uses defaults
PAIR_OPTIONS = {
    'ADMDLoss': [dict(), dict(fg_prior=True, temperature=0.5)],
    'CWDLoss': [dict(), dict(tau=4.0)],
    'FGDLoss': [dict(alpha_fg=1.0, beta_bg=1.0, gamma_attention=1.0,
                     lambda_global=1.0)],
    'FitNetLoss': [dict(), dict(normalize='level')],
    'KDQualityFocalLoss': [dict(), dict(beta=2.0)],
    'LDLoss': [dict(reg_max=3), dict(reg_max=3, class_reduction='sum')],
    'LogitKDLoss': [dict(T=2.0), dict(mode='sigmoid'),
                    dict(class_reduction='sum', T=0.5)],
    'PKDLoss': [dict(), dict(per_sample_norm=False)],
}
# losses whose channel count is fixed by their options
FIXED_CHANNELS = {'LDLoss': 16}  # 4 * (reg_max + 1)
STRIDE = 8
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REGIMES = ('normal', 'extreme', 'constant', 'zeros', 'underflow')
GT_SCENARIOS = ('empty', 'outside', 'zero_area', 'degenerate_rbox', 'hbox',
                'rbox', 'qbox')


def forward_args(cls):
    return inspect.signature(cls.forward).parameters


def registered_losses():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if cls.__module__.startswith('mmrskd.models.losses.'))


def is_pair_loss(cls):
    return {'preds_S', 'preds_T'} <= set(forward_args(cls))


# ----------------------------------------------------------------- values
def fill(draw, shape, regime, dtype, generator):
    values = torch.randn(*shape, generator=generator)
    if regime == 'extreme':
        # saturates any softmax/sigmoid; small enough that an MSE gradient
        # (2 * 2e4) still fits fp16 (an input's gradient has its dtype)
        values = values.sign() * draw(st.sampled_from([1e2, 1e4]))
    elif regime == 'constant':
        values = torch.full(shape, draw(st.floats(-5, 5)))
    elif regime == 'zeros':
        values = torch.zeros(shape)
    elif regime == 'underflow':
        values = values * 1e-9  # zero in fp16, denormal-free in fp32
    return values.to(dtype)


def gt_instances(draw, scenario, num_imgs, img_h, img_w):
    """Per image InstanceData with ``bboxes`` (input pixels), ``labels``."""
    gts = []
    for _ in range(num_imgs):
        n = 0 if scenario == 'empty' else draw(st.integers(1, 3))
        cx = torch.rand(n) * img_w
        cy = torch.rand(n) * img_h
        w = torch.rand(n) * img_w / 2 + 1
        h = torch.rand(n) * img_h / 2 + 1
        t = (torch.rand(n) - 0.5) * math.pi
        if scenario == 'outside':  # all background
            boxes = torch.stack([cx + 4 * img_w, cy + 4 * img_h,
                                 cx + 5 * img_w, cy + 5 * img_h], 1)
        elif scenario == 'zero_area':
            boxes = torch.stack([cx, cy, cx, cy + h * (torch.rand(n) > .5)],
                                1)
        elif scenario == 'degenerate_rbox':
            w = w * (torch.rand(n) > 0.5)
            boxes = RotatedBoxes(torch.stack(
                [cx, cy, w, torch.zeros(n), t * 1e3], 1))
        elif scenario == 'rbox':
            boxes = RotatedBoxes(torch.stack([cx, cy, w, h, t], 1))
        elif scenario == 'qbox':
            boxes = RotatedBoxes(torch.stack([cx, cy, w, h, t],
                                             1)).convert_to('qbox')
            boxes = QuadriBoxes(boxes.tensor)
        else:
            boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2,
                                 cy + h / 2], 1)
        labels = torch.randint(0, 3, (n, ))
        gts.append(InstanceData(bboxes=boxes, labels=labels))
    return gts


def assert_finite(loss, leaves, module):
    assert loss.shape == () and torch.isfinite(loss), loss
    if not loss.requires_grad:
        return
    loss.backward()
    for leaf in leaves:
        if leaf.grad is not None:
            assert torch.isfinite(leaf.grad.float()).all()
    for name, param in module.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


# ------------------------------------------------------------ pair losses
def build_pair_loss(name, options, channels, num_levels):
    """The loss, or a rejected example when its own validation refuses the
    drawn configuration (e.g. too few channels for a bottleneck)."""
    cfg = dict(type=name, **options)
    required = [p for p in inspect.signature(
        MODELS.get(name).__init__).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.name != 'self' and p.kind is p.POSITIONAL_OR_KEYWORD]
    for param in required:
        if param.name != 'in_channels':
            pytest.skip(f'{name}: constructor needs {param.name}; add its '
                        'options to PAIR_OPTIONS')
        cfg['in_channels'] = [channels] * num_levels
    try:
        return MODELS.build(cfg)
    except MMRSKDError:
        reject()


def fuzz_pair_loss(name, data):
    draw = data.draw
    args = forward_args(MODELS.get(name))
    num_imgs = draw(st.integers(1, 3), label='N')
    num_levels = draw(st.integers(1, 3), label='levels')
    channels = FIXED_CHANNELS.get(name) or draw(st.integers(1, 8),
                                                label='C')
    options = draw(st.sampled_from(PAIR_OPTIONS.get(name, [dict()])),
                   label='options')
    dtype = draw(st.sampled_from(DTYPES), label='dtype')
    regime_S = draw(st.sampled_from(REGIMES), label='student values')
    regime_T = draw(st.sampled_from(REGIMES), label='teacher values')
    h0 = draw(st.integers(1, 6), label='H')
    w0 = draw(st.integers(1, 6), label='W')
    sizes = [(max(h0 >> level, 1), max(w0 >> level, 1))
             for level in range(num_levels)]
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    torch.manual_seed(0)
    loss_module = build_pair_loss(name, options, channels, num_levels)
    preds_S = [fill(draw, (num_imgs, channels, *s), regime_S, dtype,
                    generator).requires_grad_() for s in sizes]
    preds_T = [fill(draw, (num_imgs, channels, *s), regime_T, dtype,
                    generator) for s in sizes]
    inputs = dict(preds_S=preds_S, preds_T=preds_T)
    if 'weight' in args and draw(st.booleans(), label='weight'):
        inputs['weight'] = [
            torch.rand(num_imgs, *s, generator=generator) *
            draw(st.sampled_from([0.0, 1.0])) for s in sizes]
    if 'mask' in args and draw(st.booleans(), label='mask'):
        inputs['mask'] = [
            (torch.rand(num_imgs, 1, *s, generator=generator) > 0.5).float()
            for s in sizes]
    if 'avg_factor' in args and draw(st.booleans(), label='avg_factor'):
        inputs['avg_factor'] = draw(st.floats(1e-3, 1e3))
    img_h, img_w = h0 * STRIDE, w0 * STRIDE
    if 'batch_gt_instances' in args:
        scenario = draw(st.sampled_from(GT_SCENARIOS), label='gt')
        inputs['batch_gt_instances'] = gt_instances(draw, scenario, num_imgs,
                                                    img_h, img_w)
    if 'batch_img_metas' in args:
        inputs['batch_img_metas'] = [
            dict(batch_input_shape=(img_h, img_w), img_shape=(img_h, img_w),
                 pad_shape=(img_h, img_w)) for _ in range(num_imgs)]
    if num_levels == 1 and draw(st.booleans(), label='bare tensors'):
        inputs = {k: v[0] if isinstance(v, list) and torch.is_tensor(v[0])
                  else v for k, v in inputs.items()}
    assert_finite(loss_module(**inputs), preds_S, loss_module)


# ---------------------------------------------------- structured losses
def fuzz_rotated_iou_loss(name, data):
    draw = data.draw
    n = draw(st.integers(0, 6), label='boxes')
    sizes = st.sampled_from([0.0, 1e-6, 1.0, 37.5, 1e5])
    angles = st.sampled_from([0.0, math.pi / 2, -math.pi / 2, 1.0, 1e3])
    centres = st.floats(-1e3, 1e3)

    def boxes():
        return torch.tensor([[draw(centres), draw(centres), draw(sizes),
                              draw(sizes), draw(angles)] for _ in range(n)],
                            dtype=torch.float32).reshape(n, 5)

    pred = boxes().requires_grad_()
    target = boxes() if not draw(st.booleans(), label='pred == target') \
        else pred.detach().clone()
    reduction = draw(st.sampled_from(['mean', 'sum', 'none']))
    loss_module = MODELS.build(dict(
        type=name, mode=draw(st.sampled_from(['linear', 'square', 'log'])),
        reduction=reduction))
    weight = None
    if draw(st.booleans(), label='weight'):
        weight = torch.rand(n) * draw(st.sampled_from([0.0, 1.0]))
    loss = loss_module(pred, target, weight=weight)
    if reduction == 'none':
        assert loss.shape == (n, ) and torch.isfinite(loss).all()
        loss = loss.sum()
    assert_finite(loss, [pred], loss_module)


def fuzz_ltd_ccd_loss(name, data):
    draw = data.draw
    num_levels = draw(st.integers(1, 3), label='levels')
    in_channels = draw(st.integers(1, 4), label='C_S')
    out_channels = draw(st.integers(1, 4), label='C_T')
    binding = draw(st.sampled_from(MODELS.get(name).BINDINGS))
    pool_sizes = draw(st.sampled_from([(4, 2, 1), ()]))
    loss_module = MODELS.build(dict(
        type=name, in_channels=in_channels, out_channels=out_channels,
        num_levels=num_levels, binding=binding, pool_sizes=pool_sizes,
        pooled_student='adapted'))
    num_imgs = draw(st.integers(1, 2), label='N')
    # BN in training mode needs more than one value per channel
    h0 = draw(st.integers(2, 8), label='H')
    sizes = [(max(h0 >> level, 1), max(h0 >> level, 1) + 1)
             for level in range(num_levels)]
    dtype = draw(st.sampled_from(DTYPES), label='dtype')
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    regime = draw(st.sampled_from(REGIMES), label='values')
    feats_S = [fill(draw, (num_imgs, in_channels, *s), regime, dtype,
                    generator).requires_grad_() for s in sizes]
    feats_T = [fill(draw, (num_imgs, out_channels, *s), 'normal', dtype,
                    generator) for s in sizes]
    assert_finite(loss_module(feats_S, feats_T), feats_S, loss_module)


def fuzz_ltd_tasd_loss(name, data):
    draw = data.draw
    cls = MODELS.get(name)
    task = draw(st.sampled_from(cls.TASKS), label='task')
    regions = [r for r in cls.REGIONS
               if task == 'cls' or r != 'teacher_score']
    region = draw(st.sampled_from(regions), label='region')
    reg_max = 3
    strides = [8, 16]
    loss_module = MODELS.build(dict(
        type=name, terms=dict(loss_term=dict(
            task=task, region=region, T=draw(st.sampled_from([1.0, 10.0])),
            weight_temperature=draw(st.sampled_from([None, 5.0])))),
        reg_max=reg_max, topk=3,
        prior_generator=dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                             octave_base_scale=4, scales_per_octave=1,
                             strides=strides)))
    num_imgs = draw(st.integers(1, 2), label='N')
    h0, w0 = draw(st.integers(1, 6), label='H'), draw(st.integers(1, 6),
                                                       label='W')
    sizes = [(h0, w0), ((h0 + 1) // 2, (w0 + 1) // 2)]
    channels = 4 * (reg_max + 1) if task == 'reg' else 3
    dtype = draw(st.sampled_from(DTYPES), label='dtype')
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logits_S = [fill(draw, (num_imgs, channels, *s),
                     draw(st.sampled_from(REGIMES)), dtype,
                     generator).requires_grad_() for s in sizes]
    logits_T = [fill(draw, (num_imgs, channels, *s),
                     draw(st.sampled_from(REGIMES)), dtype, generator)
                for s in sizes]
    img_h, img_w = h0 * strides[0], w0 * strides[0]
    gts = gt_instances(draw, draw(st.sampled_from(GT_SCENARIOS), label='gt'),
                       num_imgs, img_h, img_w)
    metas = [dict(pad_shape=(img_h, img_w), batch_input_shape=(img_h, img_w))
             for _ in range(num_imgs)]
    if task == 'cls':
        terms = loss_module(logits_S, logits_T, gts, metas)
    else:  # class logits only size the regions here
        cls_logits = [level.new_zeros(num_imgs, 3, *level.shape[-2:])
                      for level in logits_T]
        terms = loss_module(cls_logits, cls_logits, gts, metas,
                            reg_logits_S=logits_S, reg_logits_T=logits_T)
    assert_finite(terms['loss_term'], logits_S, loss_module)


STRUCTURED = {
    'RotatedIoULoss': fuzz_rotated_iou_loss,
    'LTDCCDLoss': fuzz_ltd_ccd_loss,
    'LTDTASDLoss': fuzz_ltd_tasd_loss,
}


def test_the_registry_scan_finds_the_losses():
    # an empty scan would make the parametrised test below vacuous
    names = registered_losses()
    assert {'PKDLoss', 'FGDLoss', 'LDLoss', 'RotatedIoULoss'} <= set(names)
    assert set(STRUCTURED) <= set(names)


# minimal failing inputs found by this suite, for the loss owners to fix;
# strict: the test fails as soon as they pass, so the entry gets removed
KNOWN_FAILURES = {}


def loss_params():
    return [pytest.param(name, marks=pytest.mark.xfail(
        strict=True, reason=KNOWN_FAILURES[name]))
            if name in KNOWN_FAILURES else name
            for name in registered_losses()]


@pytest.mark.parametrize('name', loss_params())
@FUZZ
@given(data=st.data())
def test_fuzzed_inputs_give_finite_loss_and_gradients(name, data):
    cls = MODELS.get(name)
    if name in STRUCTURED:
        STRUCTURED[name](name, data)
    elif is_pair_loss(cls):
        fuzz_pair_loss(name, data)
    else:
        pytest.skip(f'{name}.forward({", ".join(list(forward_args(cls))[1:])})'
                    ' takes structured inputs (targets of its head or '
                    'assigner, or it is a building block, not a loss); '
                    'covered by its own tests')
