"""The distiller's contract, checked for every distillation loss registered
from ``mmrskd.models.losses`` (a loss whose ``forward`` takes ``preds_S`` and
``preds_T``): a finite fp32 scalar with finite gradients on edge cases,
half-precision and autocast inputs, multi-level inputs, ``loss_weight``
scaling and one-line errors on mismatched shapes.

A loss without an entry in ``CASES`` is built from ``dict(type=name)`` with
4-channel feature maps; add an entry when it needs other arguments.
"""
import inspect

import pytest
import torch
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes

import mmrskd.models.losses  # noqa: F401  (registers the losses)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

NUM_IMGS = 2
LEVEL_SIZES = [(4, 5), (2, 3)]
STRIDE = 8

# name -> list of (case id, constructor kwargs, channels of preds)
CASES = {
    'CSAKDAttentionAlignmentLoss': [
        ('positions', dict(), 4),
        ('elements', dict(normalizer='elements', attend_teacher=True), 4)],
    'FitNetLoss': [('none', dict(), 3),
                   ('level', dict(normalize='level'), 3)],
    'LogitKDLoss': [('softmax', dict(T=2.0), 3),
                    ('sigmoid', dict(mode='sigmoid', T=2.0), 3)],
    'LDLoss': [('reg_max3', dict(reg_max=3), 16)],
    'PKDLoss': [('per_sample', dict(), 3),
                ('per_batch', dict(per_sample_norm=False), 3)],
    'CWDLoss': [('tau2', dict(tau=2.0), 3)],
    'FGDLoss': [('all_terms',
                 dict(alpha_fg=1.0, beta_bg=1.0, gamma_attention=1.0,
                      lambda_global=1.0), 4)],
    'KDQualityFocalLoss': [('beta1', dict(), 3), ('beta2', dict(beta=2.0),
                                                  3)],
}
GT_SCENARIOS = ('empty_gt', 'partly_empty_gt', 'degenerate_gt', 'gt_boxes')


def distill_loss_classes():
    """Registered losses of mmrskd.models.losses following the contract."""
    return {
        name: cls
        for name, cls in MODELS.module_dict.items()
        if cls.__module__.startswith('mmrskd.models.losses.')
        and {'preds_S', 'preds_T'} <= set(
            inspect.signature(cls.forward).parameters)
    }


def all_cases():
    cases = []
    for name in sorted(distill_loss_classes()):
        for case_id, kwargs, channels in CASES.get(name,
                                                   [('default', {}, 4)]):
            cases.append(pytest.param(name, kwargs, channels,
                                      id=f'{name}-{case_id}'))
    return cases


def forward_args(name):
    return set(inspect.signature(MODELS.get(name).forward).parameters)


def build_loss(name, kwargs, channels, num_levels=1, loss_weight=1.0,
               seed=0):
    cfg = dict(type=name, loss_weight=loss_weight, **kwargs)
    if name in ('CSAKDAttentionAlignmentLoss', 'FGDLoss'):
        cfg['in_channels'] = [channels] * num_levels
    torch.manual_seed(seed)
    loss = MODELS.build(cfg)
    # randomise zero-initialised layers (GcBlock outputs) so that gradients
    # reach every parameter
    for param in loss.parameters():
        torch.nn.init.normal_(param, std=0.5)
    return loss


def make_gt(scenario):
    if scenario == 'empty_gt':
        return [InstanceData(bboxes=torch.zeros(0, 4),
                             labels=torch.zeros(0, dtype=torch.long))
                for _ in range(NUM_IMGS)]
    boxes = {
        'gt_boxes': [
            RotatedBoxes(torch.tensor([[12., 10., 14., 6., 0.6],
                                       [30., 20., 8., 8., -1.2]])),
            torch.tensor([[0., 0., 16., 16.], [20., 4., 40., 30.]])
        ],
        'partly_empty_gt': [
            QuadriBoxes(torch.tensor([[2., 2., 20., 4., 18., 20., 0., 18.]])),
            torch.zeros(0, 4)
        ],
        'degenerate_gt': [
            # zero-area hbox, zero-width and point rboxes, a box off the image
            torch.tensor([[9., 9., 9., 9.], [100., 100., 120., 130.],
                          [5., 5., 5., 20.]]),
            RotatedBoxes(torch.tensor([[10., 10., 0., 12., 0.3],
                                       [20., 12., 0., 0., 1.0],
                                       [-50., -50., 3., 3., 0.]])),
        ],
    }[scenario]
    return [
        InstanceData(bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
        for b in boxes
    ]


def make_inputs(name, channels, num_levels=1, scenario='random',
                dtype=torch.float32, seed=0):
    """Keyword inputs of the loss; ``preds_S`` leaves require grad."""
    generator = torch.Generator().manual_seed(seed)
    sizes = LEVEL_SIZES[:num_levels]

    def features(size):
        values = torch.randn(NUM_IMGS, channels, *size, generator=generator)
        if scenario == 'extreme':
            values = values.sign() * 1e4
        return values.to(dtype)

    preds_S = [features(size).requires_grad_() for size in sizes]
    preds_T = [features(size) for size in sizes]
    args = forward_args(name)
    inputs = {}
    if 'weight' in args:
        inputs['weight'] = [torch.rand(NUM_IMGS, *size, generator=generator)
                            for size in sizes]
    if 'avg_factor' in args:
        inputs['avg_factor'] = 3.0
    if 'mask' in args:
        inputs['mask'] = [
            torch.rand(NUM_IMGS, 1, *size, generator=generator)
            for size in sizes
        ]
    if 'batch_gt_instances' in args:
        inputs['batch_gt_instances'] = make_gt(
            scenario if scenario in GT_SCENARIOS else 'gt_boxes')
    if 'batch_img_metas' in args:
        input_shape = (sizes[0][0] * STRIDE, sizes[0][1] * STRIDE)
        inputs['batch_img_metas'] = [
            dict(batch_input_shape=input_shape, img_shape=input_shape)
            for _ in range(NUM_IMGS)
        ]
    if num_levels == 1:
        inputs = {
            key: value[0] if isinstance(value, list)
            and isinstance(value[0], torch.Tensor) else value
            for key, value in inputs.items()
        }
        return dict(preds_S=preds_S[0], preds_T=preds_T[0], **inputs)
    return dict(preds_S=preds_S, preds_T=preds_T, **inputs)


def leaves(inputs):
    preds_S = inputs['preds_S']
    return preds_S if isinstance(preds_S, list) else [preds_S]


def assert_finite_scalar_with_finite_grads(loss_module, inputs):
    loss = loss_module(**inputs)
    assert loss.shape == () and loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    for leaf in leaves(inputs):
        assert leaf.grad is not None
        assert leaf.grad.dtype == leaf.dtype
        assert torch.isfinite(leaf.grad.float()).all()
    for param_name, param in loss_module.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    return loss


def test_registry_scan_finds_the_distill_losses():
    # guards the registry scan itself: an empty scan would make every
    # parametrised test below vacuous
    assert set(CASES) <= set(distill_loss_classes())


def scenarios_for(name):
    scenarios = ['random', 'extreme']
    if 'batch_gt_instances' in forward_args(name):
        scenarios += list(GT_SCENARIOS)
    return scenarios


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_finite_on_edge_cases(name, kwargs, channels):
    for scenario in scenarios_for(name):
        loss_module = build_loss(name, kwargs, channels)
        inputs = make_inputs(name, channels, scenario=scenario)
        assert_finite_scalar_with_finite_grads(loss_module, inputs)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_half_precision_inputs_are_computed_in_fp32(name, kwargs, channels,
                                                    dtype):
    loss_module = build_loss(name, kwargs, channels)
    half_inputs = make_inputs(name, channels, dtype=dtype)
    loss = assert_finite_scalar_with_finite_grads(loss_module, half_inputs)
    # the same (rounded) values in fp32 give the same loss
    fp32_inputs = make_inputs(name, channels, dtype=dtype)
    for key in ('preds_S', 'preds_T'):
        fp32_inputs[key] = fp32_inputs[key].detach().float()
    torch.testing.assert_close(
        loss, loss_module(**fp32_inputs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_autocast_does_not_lower_precision(name, kwargs, channels):
    loss_module = build_loss(name, kwargs, channels)
    inputs = make_inputs(name, channels)
    expected = loss_module(**inputs)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = loss_module(**inputs)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_multi_level_sums_levels(name, kwargs, channels):
    loss_module = build_loss(name, kwargs, channels, num_levels=2)
    inputs = make_inputs(name, channels, num_levels=2)
    loss = assert_finite_scalar_with_finite_grads(loss_module, inputs)
    if any(True for _ in loss_module.parameters()):
        return  # per-level parameters: see the loss' own test
    expected = 0
    for level in range(2):
        level_inputs = {
            key: value[level] if isinstance(value, list)
            and isinstance(value[0], torch.Tensor) else value
            for key, value in inputs.items()
        }
        level_inputs['preds_S'] = level_inputs['preds_S'].detach()
        expected = expected + loss_module(**level_inputs)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_loss_weight_scales_the_loss(name, kwargs, channels):
    inputs = make_inputs(name, channels)
    unit = build_loss(name, kwargs, channels)(**inputs)
    scaled = build_loss(name, kwargs, channels, loss_weight=2.5)(**inputs)
    assert unit.abs() > 1e-6
    torch.testing.assert_close(scaled, 2.5 * unit, rtol=1e-6, atol=0)


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_mismatched_channels_give_one_line_error(name, kwargs, channels):
    loss_module = build_loss(name, kwargs, channels)
    inputs = make_inputs(name, channels)
    inputs['preds_S'] = torch.randn(NUM_IMGS, channels + 1, *LEVEL_SIZES[0])
    with pytest.raises(MMRSKDError) as error:
        loss_module(**inputs)
    message = str(error.value)
    assert '\n' not in message and name in message


@pytest.mark.parametrize('name,kwargs,channels', all_cases())
def test_student_and_teacher_level_counts_must_match(name, kwargs, channels):
    loss_module = build_loss(name, kwargs, channels, num_levels=2)
    inputs = make_inputs(name, channels, num_levels=2)
    inputs['preds_T'] = inputs['preds_T'][:1]
    with pytest.raises(MMRSKDError, match='levels'):
        loss_module(**inputs)


def test_as_levels_takes_one_tensor_or_a_list_and_names_a_bad_argument():
    from mmrskd.models.losses.utils import as_levels
    level = torch.zeros(1, 2, 3, 3)
    assert as_levels('L', 'x', level)[0] is level
    assert as_levels('L', 'x', (level, level)) == [level, level]
    for bad in (None, [], [level, None], {'a': level}):
        with pytest.raises(MMRSKDError, match='^L: x must be a Tensor'):
            as_levels('L', 'x', bad)
