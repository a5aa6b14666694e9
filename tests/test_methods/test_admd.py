"""ADMD: the discrepancy-masked feature loss, the two weight-increasing
schedules, and the shipped CPU configs training through the distiller."""
import math
import os.path as osp
import warnings

import pytest
import torch

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.testing import demo_batch
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def build_loss(**kwargs):
    """The raw-discrepancy, level-summed loss unless ``discrepancy_norm`` or
    ``level_norm`` is given, so the hand computations below stay in the
    units of the squared error."""
    kwargs.setdefault('discrepancy_norm', 'none')
    kwargs.setdefault('level_norm', 'none')
    return MODELS.build(dict(type='ADMDLoss', **kwargs))


def two_position_pair():
    """N=1, C=2, H=1, W=2: squared errors (1, 1) at position 0 and (0, 4)
    at position 1, so D = (1, 2) and the channel sums are (2, 4)."""
    preds_T = torch.tensor([[[[1., 0.]], [[1., 2.]]]])
    preds_S = torch.zeros_like(preds_T, requires_grad=True)
    return preds_S, preds_T


# ---------------------------------------------------------------- ADMDLoss
def test_loss_matches_hand_computation():
    preds_S, preds_T = two_position_pair()
    e = math.e
    # M = 2 softmax(1, 2) = (2 / (1 + e), 2e / (1 + e)); L = (2 M0 + 4 M1) / 2
    expected = (2 + 4 * e) / (1 + e)
    loss = build_loss(loss_weight=1.0)(preds_S, preds_T)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert build_loss(loss_weight=0.5)(
        preds_S, preds_T).item() == pytest.approx(expected / 2, rel=1e-6)


def test_temperature_sharpens_or_flattens_the_mask():
    preds_S, preds_T = two_position_pair()
    # tau -> inf: M = 1 everywhere, the plain channel-summed MSE (2 + 4) / 2
    flat = build_loss(temperature=1e6)(preds_S, preds_T)
    assert flat.item() == pytest.approx(3.0, rel=1e-5)
    # tau = 0.5: M = 2 softmax(2, 4)
    w0, w1 = 2 / (1 + math.e**2), 2 * math.e**2 / (1 + math.e**2)
    sharp = build_loss(temperature=0.5)(preds_S, preds_T)
    assert sharp.item() == pytest.approx((2 * w0 + 4 * w1) / 2, rel=1e-6)


def test_mean_norm_matches_hand_computation():
    preds_S, preds_T = two_position_pair()
    # D = (1, 2) over its mean 1.5: (2/3, 4/3); M = 2 softmax(2/3, 4/3)
    a = math.exp(2 / 3)
    expected = (2 * 2 / (1 + a) + 4 * 2 * a / (1 + a)) / 2
    loss = build_loss(discrepancy_norm='mean')(preds_S, preds_T)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert MODELS.build(dict(type='ADMDLoss')).discrepancy_norm == 'mean'


def test_mean_norm_mask_is_scale_free_raw_mask_collapses():
    torch.manual_seed(0)
    sq_error = torch.rand(2, 4, 6, 6)
    scaled = build_loss(discrepancy_norm='mean')
    torch.testing.assert_close(scaled.discrepancy_mask(sq_error),
                               scaled.discrepancy_mask(100 * sq_error))
    # raw units: x100 puts nearly all of the mask on one position per image
    raw = build_loss().discrepancy_mask(100 * sq_error).flatten(1)
    assert (raw.max(1).values > 0.9 * 36).all()
    assert (scaled.discrepancy_mask(sq_error).max() < 4)


def test_unknown_discrepancy_norm_is_a_one_line_error():
    with pytest.raises(MMRSKDError, match=r"use one of \['mean', 'none'\]"):
        build_loss(discrepancy_norm='std')


def test_mask_is_detached():
    preds_S, preds_T = two_position_pair()
    build_loss()(preds_S, preds_T).backward()
    e = math.e
    mask = torch.tensor([2 / (1 + e), 2 * e / (1 + e)])
    # d/dS of M (S - T)^2 / (N H W) with M constant
    expected = mask * 2 * (preds_S.detach() - preds_T) / 2
    torch.testing.assert_close(preds_S.grad, expected)


def test_mask_has_mean_one_and_follows_the_discrepancy():
    loss = build_loss(temperature=2.0)
    sq_error = torch.rand(3, 4, 5, 6)
    mask = loss.discrepancy_mask(sq_error)
    assert mask.shape == (3, 1, 5, 6)
    torch.testing.assert_close(mask.mean((1, 2, 3)), torch.ones(3))
    order_mask = mask.flatten(1).argsort(1)
    order_discrepancy = sq_error.mean(1).flatten(1).argsort(1)
    assert torch.equal(order_mask, order_discrepancy)


@pytest.mark.parametrize('rotated', [False, True])
def test_fg_prior_doubles_the_mask_on_objects(rotated):
    preds_S, preds_T = two_position_pair()
    # stride 8: a box over cell 0 only (centre (4, 4)); the rotated box is
    # the same square turned by 90 degrees
    box = RotatedBoxes(torch.tensor([[4., 4., 6., 6., math.pi / 2]])) \
        if rotated else torch.tensor([[1., 1., 7., 7.]])
    gt = [InstanceData(bboxes=box, labels=torch.zeros(1, dtype=torch.long))]
    metas = [dict(batch_input_shape=(8, 16))]
    e = math.e
    mask = [2 / (1 + e) * 2, 2 * e / (1 + e)]
    expected = (2 * mask[0] + 4 * mask[1]) / 2
    loss = build_loss(fg_prior=True)(preds_S, preds_T, gt, metas)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_fg_prior_without_gt_is_a_one_line_error():
    preds_S, preds_T = two_position_pair()
    with pytest.raises(MMRSKDError, match='fg_prior') as error:
        build_loss(fg_prior=True)(preds_S, preds_T)
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('scenario', ['empty_gt', 'extreme', 'identical'])
def test_finite_on_edge_cases(scenario):
    torch.manual_seed(0)
    levels = [(2, 3, 8, 8), (2, 3, 4, 4)]
    preds_T = [torch.randn(shape) for shape in levels]
    preds_S = [torch.randn(shape) for shape in levels]
    if scenario == 'extreme':
        preds_S = [p.sign() * 1e4 for p in preds_S]
        preds_T = [-p.sign() * 1e4 for p in preds_T]
    if scenario == 'identical':
        preds_S = [p.clone() for p in preds_T]
    preds_S = [p.requires_grad_() for p in preds_S]
    gt = [InstanceData(bboxes=torch.zeros(0, 4),
                       labels=torch.zeros(0, dtype=torch.long))] * 2
    metas = [dict(batch_input_shape=(64, 64))] * 2
    loss = build_loss(fg_prior=True)(preds_S, preds_T, gt, metas)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in preds_S)
    if scenario == 'identical':
        assert loss.item() == 0


# ------------------------------------------------------------- schedules
def reference_adaptive_weights(raw_losses, warmup, momentum, max_weight):
    """The weight used at each step, written out step by step."""
    weights, history, ema = [], [], None
    for raw in raw_losses:
        if len(history) < warmup:
            weight = 1.0
        else:
            initial = sum(history[:warmup]) / warmup
            weight = min(max(initial / ema, 1.0), max_weight)
        weights.append(weight)
        history.append(raw)
        ema = raw if ema is None else momentum * ema + (1 - momentum) * raw
    return weights


def run_schedule(schedule, raw_losses, start_iter=0):
    weights = []
    for step, raw in enumerate(raw_losses, start=start_iter):
        weight = schedule(step, 100)
        weights.append(weight)
        # the distiller reports the scheduled (weighted) loss
        schedule.update(torch.tensor(raw * weight))
    return weights


def test_adaptive_weight_matches_hand_computation():
    schedule = TASK_UTILS.build(
        dict(type='ADMDAdaptiveWeight', warmup_iters=2, momentum=0.5,
             max_weight=3.0))
    # L0 = (4 + 2) / 2 = 3; EMA: 4, 3, 2, 1.5 -> weights 1, 1, 1, 1.5, 2
    weights = run_schedule(schedule, [4.0, 2.0, 1.0, 1.0, 0.5])
    assert weights == pytest.approx([1.0, 1.0, 1.0, 1.5, 2.0])
    # EMA 1.0 -> 3 / 1 = 3 = max_weight; then 0.25 -> clipped at 3
    assert run_schedule(schedule, [0.01, 0.01],
                        start_iter=5) == pytest.approx([3.0, 3.0])


def test_adaptive_weight_never_drops_below_one():
    schedule = TASK_UTILS.build(
        dict(type='ADMDAdaptiveWeight', warmup_iters=1, momentum=0.0))
    assert run_schedule(schedule, [1.0, 5.0, 5.0]) == [1.0, 1.0, 1.0]


def test_adaptive_weight_follows_reference_on_a_decaying_loss():
    torch.manual_seed(0)
    raw = (torch.exp(-torch.arange(60.) / 15) *
           (1 + 0.2 * torch.rand(60))).tolist()
    schedule = TASK_UTILS.build(
        dict(type='ADMDAdaptiveWeight', warmup_iters=10, momentum=0.9,
             max_weight=5.0))
    weights = run_schedule(schedule, raw)
    assert weights == pytest.approx(
        reference_adaptive_weights(raw, 10, 0.9, 5.0), rel=1e-6)
    assert weights[-1] > 2  # the loss fell, the weight rose


def test_adaptive_weight_resumes_exactly_from_its_state_dict():
    cfg = dict(type='ADMDAdaptiveWeight', warmup_iters=3, momentum=0.8)
    raw = [3.0, 2.5, 2.0, 1.2, 1.0, 0.7, 0.6, 0.4]
    uninterrupted = run_schedule(TASK_UTILS.build(cfg), raw)
    first = TASK_UTILS.build(cfg)
    run_schedule(first, raw[:4])
    state = {k: v.clone() for k, v in first.state_dict().items()}
    assert set(state) == {'num_updates', 'initial_loss_sum', 'ema_loss',
                          'weight'}
    resumed = TASK_UTILS.build(cfg)
    resumed.load_state_dict(state)
    assert run_schedule(resumed, raw[4:], start_iter=4) == uninterrupted[4:]


def test_adaptive_weight_ignores_non_finite_losses():
    schedule = TASK_UTILS.build(
        dict(type='ADMDAdaptiveWeight', warmup_iters=1, momentum=0.5))
    run_schedule(schedule, [2.0, float('nan'), float('inf'), 1.0])
    assert int(schedule.num_updates) == 2
    assert float(schedule.ema_loss) == pytest.approx(1.5)


@pytest.mark.parametrize('cfg', [
    dict(warmup_iters=0), dict(momentum=1.0), dict(max_weight=0.5)])
def test_adaptive_weight_rejects_bad_options(cfg):
    with pytest.raises(MMRSKDError):
        TASK_UTILS.build(dict(type='ADMDAdaptiveWeight', **cfg))


def test_monotone_weight_is_linear_in_progress():
    schedule = TASK_UTILS.build(dict(type='ADMDMonotoneWeight', gamma=2.0))
    values = [schedule(t, 200) for t in (0, 50, 100, 200)]
    assert values == pytest.approx([1.0, 1.5, 2.0, 3.0])
    with pytest.raises(MMRSKDError):
        TASK_UTILS.build(dict(type='ADMDMonotoneWeight', gamma=-1.0))


# -------------------------------------------------------------- training
@pytest.mark.parametrize('config,rotated', [
    ('configs/admd/admd_fcos_r18-w16_fcos_r34-w32_12e_synthetic-dior.py',
     False),
    ('configs/admd/admd_rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e'
     '_12e_synthetic-dota.py', True),
])
def test_cpu_config_trains_two_iterations(config, rotated):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    adapter = model.connectors['fpn_adapter'].levels[0].conv.weight
    adapter_before = adapter.detach().clone()
    for step in range(2):
        inputs, samples = demo_batch(model.student, size=64, num_classes=5,
                                     rotated=rotated, seed=step)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper)
        assert 'loss_admd' in log and torch.isfinite(log['loss_admd'])
        assert log['loss_admd'] > 0
    assert not torch.equal(adapter, adapter_before)
    schedule = model.loss_schedules['loss_admd']
    assert int(schedule.num_updates) == 2
    assert 'loss_schedules.loss_admd.ema_loss' in model.state_dict()


def test_channel_feature_norm_standardises_both_sides_by_hand():
    # one image, one channel, two positions: S = (0, 2) -> (-1, 1) and
    # T = (1, 5) -> (-1, 1) after standardising: no discrepancy, no loss
    preds_S = torch.tensor([[[[0., 2.]]]], requires_grad=True)
    preds_T = torch.tensor([[[[1., 5.]]]])
    normed = build_loss(feature_norm='channel')
    assert normed(preds_S, preds_T).item() == pytest.approx(0.0, abs=1e-5)
    # raw: errors (1, 9), D = (1, 9), M = 2 softmax(1, 9); L = sum(M e) / 2
    e = torch.tensor([1., 9.])
    mask = 2 * torch.softmax(e, 0)
    assert build_loss()(preds_S, preds_T).item() == pytest.approx(
        (mask * e).sum().item() / 2, rel=1e-6)
    # T = (1, 3) -> (-1, 1) too; T = (3, 1) -> (1, -1): errors (4, 4) over
    # the two positions, a uniform mask, L = (4 + 4) / 2
    flipped = torch.tensor([[[[3., 1.]]]])
    assert normed(preds_S, flipped).item() == pytest.approx(4.0, rel=1e-4)
    with pytest.raises(MMRSKDError, match="feature_norm='batch' is not"):
        build_loss(feature_norm='batch')


def test_teacher_level_norm_divides_each_image_by_its_energy_by_hand():
    # the two-position pair: T^2 has mean (1 + 0 + 1 + 4) / 4 = 1.5, so the
    # raw loss (2 + 4e) / (1 + e) is divided by 1.5
    preds_S, preds_T = two_position_pair()
    e = math.e
    loss = build_loss(level_norm='teacher')(preds_S, preds_T)
    assert loss.item() == pytest.approx((2 + 4 * e) / (1 + e) / 1.5,
                                        rel=1e-5)
    assert MODELS.build(dict(type='ADMDLoss')).level_norm == 'teacher'


def test_teacher_level_norm_is_floored_on_an_all_zero_teacher_level():
    # T = 0, S = [1, 3] at two positions: the teacher's energy 0 is floored
    # at 1% of the student's, 0.01 * (1 + 9) / 2 = 0.05; the mean-normalised
    # discrepancy [0.2, 1.8] gives the mask 2 softmax([0.2, 1.8])
    preds_S = torch.tensor([[[[1., 3.]]]])
    preds_T = torch.zeros(1, 1, 1, 2)
    w0, w1 = math.exp(0.2), math.exp(1.8)
    mask = [2 * w0 / (w0 + w1), 2 * w1 / (w0 + w1)]
    expected = (mask[0] * 1 + mask[1] * 9) / 0.05 / 2
    loss = build_loss(level_norm='teacher', discrepancy_norm='mean')(
        preds_S, preds_T)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # in fp16 (AMP) the gradient reaching the student stays finite
    half_S = torch.full((1, 1, 1, 1), 0.5, dtype=torch.float16,
                        requires_grad=True)
    build_loss(level_norm='teacher')(
        half_S, torch.zeros(1, 1, 1, 1, dtype=torch.float16)).backward()
    # 2 * 0.5 / max(0.01 * 0.25, 1e-4) = 400
    assert half_S.grad.item() == pytest.approx(400, rel=1e-3)


def test_teacher_level_norm_makes_levels_count_alike():
    # two levels, the second 30x the first in scale, errors in proportion:
    # summed raw, the second is 900x the first; normalised, they are equal
    torch.manual_seed(0)
    preds_T = torch.randn(2, 3, 4, 4)
    preds_S = preds_T + 0.1 * torch.randn(2, 3, 4, 4)
    # (the mean-normalised mask is the same on both scales)
    normed = build_loss(level_norm='teacher', discrepancy_norm='mean')
    raw = build_loss(discrepancy_norm='mean')
    low = normed([preds_S], [preds_T])
    both = normed([preds_S, 30 * preds_S], [preds_T, 30 * preds_T])
    assert both.item() == pytest.approx(2 * low.item(), rel=1e-4)
    assert raw([30 * preds_S], [30 * preds_T]).item() == pytest.approx(
        900 * raw([preds_S], [preds_T]).item(), rel=1e-4)
    with pytest.raises(MMRSKDError, match="level_norm='batch' is not"):
        build_loss(level_norm='batch')


def test_reduces_to_pkd_with_a_flat_mask_on_standardised_features():
    # feature_norm='channel' is PKD's per-image standardisation; with a flat
    # mask and no level norm the loss is C x the mean squared error, which
    # PKD halves: loss_weight 1 / (2 C) makes the two equal
    torch.manual_seed(0)
    preds_S = [torch.randn(2, 8, 6, 6), torch.randn(2, 8, 3, 3)]
    preds_T = [2 * torch.randn(2, 8, 6, 6) + 1, torch.randn(2, 8, 3, 3)]
    admd = build_loss(feature_norm='channel', temperature=1e9,
                      loss_weight=1 / 16)
    pkd = MODELS.build(dict(type='PKDLoss'))
    torch.testing.assert_close(admd(preds_S, preds_T), pkd(preds_S, preds_T))
