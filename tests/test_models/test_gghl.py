"""GGHL: assigner, ORC coding, JOL loss, decoding and a tiny training run."""
import math
import os.path as osp

import mmrskd  # noqa: F401  (compat layer before mmrotate is imported)
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmrotate.models.task_modules.coders import GVFixCoder
from mmrotate.structures.bbox import (QuadriBoxes, RotatedBoxes, rbox2qbox,
                                      qbox2rbox)
from torch.nn.modules.batchnorm import _BatchNorm

from mmrskd.evaluation import RSDetMetric
from mmrskd.models.losses.jol_loss import JOLLoss
from mmrskd.models.task_modules.gghl_assigner import GGHLAssigner
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FEATMAPS_128 = [(16, 16), (8, 8), (4, 4)]
STRIDES = [8, 16, 32]


def gt(rboxes, labels):
    rboxes = torch.tensor(rboxes, dtype=torch.float32).view(-1, 5)
    return InstanceData(
        bboxes=QuadriBoxes(rbox2qbox(rboxes)), labels=torch.tensor(labels))


def reference_heatmap(qbox, stride, height, width, radius_max,
                      exponent=0.7, thr=0.05):
    """GGHL's per-cell loop for one GT on one level (independent of the
    vectorised assigner): returns {(row, col): v} of positive cells and the
    area weight."""
    pts = qbox.view(4, 2).tolist()
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
    cx, cy = sum(xs) / 4, sum(ys) / 4
    _, _, w, h, angle = qbox2rbox(qbox[None])[0].tolist()
    if w < h:
        w, h, angle = h, w, angle + math.pi / 2
    r_long, r_short = w / (2 * stride), h / (2 * stride)
    e_long, e_short = 2 / r_long**exponent, 2 / r_short**exponent
    gx, gy = int(cx // stride), int(cy // stride)
    rx = int(min(max((xmax - xmin) / stride / 2, 1), radius_max))
    ry = int(min(max((ymax - ymin) / stride / 2, 1), radius_max))
    cells = {}
    for i in range(max(gx - rx - 1, 0), min(gx + rx + 1, width - 1) + 1):
        for j in range(max(gy - ry - 1, 0), min(gy + ry + 1, height - 1) + 1):
            dx, dy = i - gx, j - gy
            u = math.cos(angle) * dx + math.sin(angle) * dy
            v_ = -math.sin(angle) * dx + math.cos(angle) * dy
            v = math.exp(-((e_long * u)**2 + (e_short * v_)**2) / 2)
            px, py = (i + 0.5) * stride, (j + 0.5) * stride
            inside = xmin < px < xmax and ymin < py < ymax
            if v > thr and inside:
                cells[(j, i)] = v
    return cells, math.log(2) / math.log(math.sqrt(rx * ry) + 1)


# ----------------------------------------------------------------- assigner
def test_level_choice_uses_overlapping_size_ranges():
    assigner = GGHLAssigner(num_classes=1, ref_img_size=None)
    t0, t1 = 3 * 16 / 0.7, 3 * 64 / 0.7  # 68.57, 274.29
    sizes = torch.tensor([30., 75., 100., 300., 400.])
    masks = assigner.level_masks(sizes, img_size=800)
    # 75 <= 1.2 * t0 and 300 <= 1.2 * t1 train two levels
    expected = torch.tensor([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0],
                             [0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(masks, expected)
    assert 75 > t0 and 75 <= 1.2 * t0 and 300 > t1 and 300 <= 1.2 * t1
    # with ref_img_size=800 the thresholds halve for a 400 px input
    half = GGHLAssigner(num_classes=1, ref_img_size=800).level_masks(
        torch.tensor([40.]), img_size=400)
    assert torch.equal(half[:, 0], torch.tensor([True, True, False]))

    # through assign(): a 100 px square trains only the middle level
    assigner = GGHLAssigner(num_classes=1, ref_img_size=None)
    result = assigner.assign(gt([[128., 128., 100., 100., 0.]], [0]),
                             [(32, 32), (16, 16), (8, 8)], STRIDES)
    assert [int(level.pos_mask.sum()) > 0 for level in result] == \
        [False, True, False]


def test_gaussian_peak_at_centroid_and_hand_values():
    assigner = GGHLAssigner(num_classes=2, ref_img_size=None)
    # horizontal 40x20 box centred on (52, 44): centroid cell (6, 5)
    level = assigner.assign(gt([[52., 44., 40., 20., 0.]], [1]),
                            FEATMAPS_128, STRIDES)[0]
    heat = level.heatmap[:, 1].view(16, 16)
    assert heat[5, 6] == 1.0
    assert heat.max() == 1.0 and level.heatmap[:, 0].abs().sum() == 0
    e_long = 2 / (40 / 16)**0.7
    e_short = 2 / (20 / 16)**0.7
    assert heat[5, 7].item() == pytest.approx(math.exp(-e_long**2 / 2))
    assert heat[5, 5].item() == pytest.approx(math.exp(-e_long**2 / 2))
    assert heat[6, 6].item() == pytest.approx(math.exp(-e_short**2 / 2))
    assert heat[6, 7].item() == pytest.approx(
        math.exp(-(e_long**2 + e_short**2) / 2))
    # area weight ln2 / ln(sqrt(rx * ry) + 1), rx = floor(40/16), ry = 1
    assert level.area_weights[5 * 16 + 6].item() == pytest.approx(
        math.log(2) / math.log(math.sqrt(2 * 1) + 1))

    # a 45-degree box is elongated along its long side, (1, 1) in cells
    level = assigner.assign(gt([[52., 44., 40., 20., math.pi / 4]], [0]),
                            FEATMAPS_128, STRIDES)[0]
    heat = level.heatmap[:, 0].view(16, 16)
    assert heat[5, 6] == 1.0
    along = (1 + 1) / math.sqrt(2)
    assert heat[6, 7].item() == pytest.approx(
        math.exp(-(e_long * along)**2 / 2))
    assert heat[6, 7] > heat[4, 7]


@pytest.mark.parametrize('rbox', [
    [52., 44., 40., 20., 0.4],
    [10., 60., 48., 14., -1.1],  # cut by the image border
    [70., 70., 30., 30., 0.2],
    [52., 44., 14., 14., 0.],  # Gaussian wider than the box: HBB decides
    [128., 100., 160., 20., 0.],  # window radius capped at 4 (+1)
])
def test_positive_mask_matches_reference_loop(rbox):
    # one level of 32x32 cells at stride 8 for every size
    assigner = GGHLAssigner(
        num_classes=1, ref_img_size=None, level_size_thresholds=(1e3, 2e3))
    gts = gt([rbox], [0])
    level = assigner.assign(gts, [(32, 32), (16, 16), (8, 8)], STRIDES)[0]
    expected, area_weight = reference_heatmap(gts.bboxes.tensor[0], 8, 32,
                                              32, 4)
    assert expected, 'the reference found no positive cell'
    assert torch.allclose(level.area_weights[level.pos_mask],
                          torch.tensor(area_weight))
    pos = level.pos_mask.view(32, 32).nonzero().tolist()
    assert sorted(map(tuple, pos)) == sorted(expected)
    heat = level.heatmap[:, 0].view(32, 32)
    for (row, col), value in expected.items():
        assert heat[row, col].item() == pytest.approx(value, rel=1e-5)
    # positives only where the cell centre is strictly inside the HBB
    hbb = level.bboxes[level.pos_mask]
    rows, cols = level.pos_mask.view(32, 32).nonzero(as_tuple=True)
    centres = torch.stack([cols + 0.5, rows + 0.5], dim=1) * 8
    assert ((centres > hbb[:, :2]) & (centres < hbb[:, 2:])).all()
    assert (heat.flatten()[~level.pos_mask] == 0).all()


def test_overlapping_gts_take_the_maximum():
    assigner = GGHLAssigner(num_classes=2, ref_img_size=None)
    # two boxes of different classes, centroid cells (6, 5) and (7, 5)
    gts = gt([[52., 44., 40., 20., 0.], [60., 44., 40., 20., 0.]], [0, 1])
    level = assigner.assign(gts, FEATMAPS_128, STRIDES)[0]
    single = [
        assigner.assign(gt([box], [0]), FEATMAPS_128,
                        STRIDES)[0].heatmap[:, 0]
        for box in ([52., 44., 40., 20., 0.], [60., 44., 40., 20., 0.])
    ]
    cell_a, cell_b = 5 * 16 + 6, 5 * 16 + 7
    # each cell belongs to the GT with the larger v there
    assert level.gt_inds[cell_a] == 0 and level.gt_inds[cell_b] == 1
    assert torch.equal(level.bboxes[cell_a], torch.tensor([32., 34., 72.,
                                                           54.]))
    # per-class soft targets keep both GTs' values
    assert torch.equal(level.heatmap[:, 0], single[0])
    assert torch.equal(level.heatmap[:, 1], single[1])
    owner_value = torch.stack(single, 1)[torch.arange(256),
                                         level.gt_inds.clamp(min=0)]
    assert torch.equal(owner_value[level.pos_mask],
                       torch.stack(single, 1).max(1).values[level.pos_mask])

    # same class: the heatmap is the maximum of the two Gaussians
    same = assigner.assign(
        gt([[52., 44., 40., 20., 0.], [60., 44., 40., 20., 0.]], [0, 0]),
        FEATMAPS_128, STRIDES)[0]
    assert torch.equal(same.heatmap[:, 0], torch.maximum(*single))


def test_tiny_boxes_are_skipped():
    assigner = GGHLAssigner(num_classes=1, ref_img_size=None)
    tiny = assigner.assign(gt([[52., 44., 4., 3., 0.]], [0]), FEATMAPS_128,
                           STRIDES)
    assert all(not level.pos_mask.any() for level in tiny)
    assert all(level.heatmap.sum() == 0 for level in tiny)
    assert all((level.gt_inds == -1).all() for level in tiny)
    small = assigner.assign(gt([[52., 44., 6., 3., 0.]], [0]),
                            FEATMAPS_128, STRIDES)
    assert small[0].pos_mask.sum() == 1
    empty = assigner.assign(
        InstanceData(bboxes=QuadriBoxes(torch.zeros(0, 8)),
                     labels=torch.zeros(0, dtype=torch.long)), FEATMAPS_128,
        STRIDES)
    assert [len(level) for level in empty] == [256, 64, 16]


def test_assigner_rejects_bad_boxes_and_levels():
    assigner = GGHLAssigner(num_classes=1)
    with pytest.raises(MMRSKDError, match='box_type="qbox"'):
        assigner.assign(
            InstanceData(bboxes=torch.zeros(1, 6), labels=torch.zeros(1)),
            FEATMAPS_128, STRIDES)
    with pytest.raises(MMRSKDError, match='window_radius_max'):
        assigner.assign(gt([[52., 44., 40., 20., 0.]], [0]),
                        FEATMAPS_128[:2], STRIDES[:2])


# --------------------------------------------------------------------- ORC
def test_orc_encode_decode_round_trip():
    assigner = GGHLAssigner(num_classes=1, ref_img_size=None)
    # vertices on the top, right, bottom and left HBB sides
    quad = torch.tensor([[30., 10., 50., 30., 20., 40., 10., 20.]])
    level = assigner.assign(
        InstanceData(bboxes=QuadriBoxes(quad), labels=torch.tensor([0])),
        FEATMAPS_128, STRIDES)[0]
    pos = level.pos_mask
    assert pos.any()
    # a_i hand-computed on the 40 x 30 HBB; area 650 / 1200 by shoelace
    assert torch.allclose(level.orc[pos][0],
                          torch.tensor([0.5, 20 / 30, 0.75, 20 / 30]))
    assert level.ratios[pos][0].item() == pytest.approx(650 / 1200)
    decoded = GVFixCoder().decode(level.bboxes[pos][:1], level.orc[pos][:1])
    assert torch.allclose(decoded, quad)  # same vertex order: t, r, b, l

    # a rotated rectangle given in another vertex order
    rect = rbox2qbox(torch.tensor([[64., 64., 60., 24., 0.6]]))
    level = assigner.assign(
        InstanceData(bboxes=QuadriBoxes(rect), labels=torch.tensor([0])),
        FEATMAPS_128, STRIDES)
    level = next(lv for lv in level if lv.pos_mask.any())
    decoded = GVFixCoder().decode(level.bboxes[level.pos_mask][:1],
                                  level.orc[level.pos_mask][:1])
    assert torch.allclose(
        sorted_vertices(decoded), sorted_vertices(rect), atol=1e-3)

    # near-horizontal (area ratio > 0.9): zero offsets decode to the HBB
    flat = rbox2qbox(torch.tensor([[64., 64., 60., 24., 0.02]]))
    level = assigner.assign(
        InstanceData(bboxes=QuadriBoxes(flat), labels=torch.tensor([0])),
        FEATMAPS_128, STRIDES)
    level = next(lv for lv in level if lv.pos_mask.any())
    assert (level.orc[level.pos_mask] == 0).all()
    hbb = level.bboxes[level.pos_mask][:1]
    x1, y1, x2, y2 = hbb[0].tolist()
    assert torch.allclose(
        GVFixCoder().decode(hbb, torch.zeros(1, 4)),
        torch.tensor([[x1, y1, x2, y1, x2, y2, x1, y2]]))


def sorted_vertices(qboxes):
    return qboxes.view(-1, 2)[qboxes.view(-1, 2)[:, 0].argsort()]


# -------------------------------------------------------------------- head
def tiny_head(**kwargs):
    cfg = dict(
        type='GGHLHead',
        num_classes=2,
        in_channels=(4, 4, 4),
        feat_channels=(4, 4, 4),
        train_cfg=dict(assigner=dict(type='GGHLAssigner')),
        test_cfg=dict(
            nms_pre=100,
            score_thr=0.05,
            nms=dict(type='nms_quadri', iou_threshold=0.45),
            max_per_img=10))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def hand_set_outputs():
    """Raw outputs on a 64x64 input with one confident cell at level 0,
    row 3, col 4 (centre (36, 28)): HBB (20, 12, 52, 44), offsets 0.25,
    area ratio 0.625 -> a square rotated by atan(1/3)."""
    sizes = [(8, 8), (4, 4), (2, 2)]
    cls = [torch.full((1, 2, h, w), -10.) for h, w in sizes]
    obj = [torch.full((1, 1, h, w), -10.) for h, w in sizes]
    bbox = [torch.zeros(1, 4, h, w) for h, w in sizes]
    orc = [torch.zeros(1, 4, h, w) for h, w in sizes]
    ratio = [torch.full((1, 1, h, w), 3.) for h, w in sizes]
    cls[0][0, :, 3, 4] = torch.tensor([4., -4.])
    obj[0][0, 0, 3, 4] = 4.
    bbox[0][0, :, 3, 4] = torch.log(torch.tensor([16., 16., 16., 16.]) / 8)
    orc[0][0, :, 3, 4] = torch.logit(torch.tensor(0.01 + 0.99 * 0.25))
    ratio[0][0, 0, 3, 4] = 6 * 0.625 - 3
    return cls, bbox, orc, ratio, obj


EXPECTED_QBOX = torch.tensor([[28., 12., 52., 20., 44., 44., 20., 36.]])


def metric_on(pred_instances, box_type):
    metric = RSDetMetric(box_type=box_type, classwise=False)
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, [
        dict(
            img_id=0,
            gt_instances=dict(
                bboxes=QuadriBoxes(EXPECTED_QBOX), labels=torch.tensor([0])),
            ignored_instances=dict(
                bboxes=QuadriBoxes(torch.zeros(0, 8)),
                labels=torch.zeros(0, dtype=torch.long)),
            pred_instances=pred_instances.to_dict())
    ])
    return metric.evaluate(1)['rsdet/mAP']


def test_decode_hand_set_output_to_qbox_and_rbox():
    meta = [dict(img_shape=(64, 64), ori_shape=(64, 64),
                 scale_factor=(1., 1.))]
    result = tiny_head().predict_by_feat(
        *hand_set_outputs(), batch_img_metas=meta)[0]
    assert isinstance(result.bboxes, QuadriBoxes)
    assert len(result) == 1 and result.labels.tolist() == [0]
    assert result.scores.item() == pytest.approx(torch.sigmoid(
        torch.tensor(4.)).item()**2)
    assert torch.allclose(result.bboxes.tensor, EXPECTED_QBOX, atol=1e-4)
    assert metric_on(result, 'qbox') == 1.0

    result = tiny_head(predict_box_type='rbox').predict_by_feat(
        *hand_set_outputs(), batch_img_metas=meta)[0]
    assert isinstance(result.bboxes, RotatedBoxes)
    cx, cy, w, h, angle = result.bboxes.tensor[0].tolist()
    assert (cx, cy) == pytest.approx((36., 28.), abs=1e-3)
    assert (w, h) == pytest.approx((math.sqrt(640), ) * 2, abs=1e-3)
    assert math.tan(angle) == pytest.approx(
        1 / 3, abs=1e-4) or math.tan(angle) == pytest.approx(-3, abs=1e-3)
    assert metric_on(result, 'rbox') == 1.0

    # rescale back to a 2x larger original image
    meta[0]['scale_factor'] = (0.5, 0.5)
    result = tiny_head().predict_by_feat(
        *hand_set_outputs(), batch_img_metas=meta, rescale=True)[0]
    assert torch.allclose(result.bboxes.tensor, 2 * EXPECTED_QBOX, atol=1e-3)


def test_decode_zeroes_offsets_of_horizontal_predictions():
    head = tiny_head()
    decoded = head.decode(
        torch.zeros(1, 2, 4), torch.full((1, 2, 4), 2.),
        torch.tensor([[[2.5], [2.2]]]), torch.tensor([[4., 4.], [12., 4.]]),
        8)
    # hard sigmoid: relu6(x + 3) / 6 -> 0.9167 (> 0.9) and 0.8667
    assert torch.allclose(decoded['ratios'], torch.tensor([[5.5 / 6,
                                                            5.2 / 6]]))
    assert (decoded['orc'][0, 0] == 0).all()
    expected = (torch.sigmoid(torch.tensor(2.)) - 0.01) / 0.99
    assert torch.allclose(decoded['orc'][0, 1], expected.expand(4))
    assert torch.equal(decoded['bboxes'][0, 0], torch.tensor([-4., -4., 12.,
                                                              12.]))


def test_overflowing_ltrb_are_clipped_and_keep_the_losses_finite():
    head = tiny_head()
    raw = torch.tensor([[[0., 0., 0., 0.], [500., 500., 500., 500.]]])
    decoded = head.decode(raw, torch.zeros(1, 2, 4), torch.zeros(1, 2, 1),
                          torch.tensor([[4., 4.], [12., 4.]]), 8)
    # 1e4 strides; the in-range cell is untouched
    torch.testing.assert_close(decoded['distances'][0, 1],
                               torch.full((4, ), 8e4))
    assert torch.equal(decoded['distances'][0, 0], torch.full((4, ), 8.))
    # raw ltrb of 500 everywhere (a random-init deep teacher in eval mode
    # gives such values): exp() gave inf sides, NaN IoUs and NaN losses
    torch.manual_seed(0)
    feats = [torch.randn(1, 4, s, s) for s in (8, 4, 2)]
    outs = list(map(list, head(feats)))
    outs[1] = [torch.full_like(x, 500.) for x in outs[1]]
    losses = head.loss_by_feat(*outs, [gt([[30., 30., 30., 12., 0.3]], [0])],
                               [{}])
    assert all(torch.isfinite(value) for value in losses.values())


# --------------------------------------------------------------------- JOL
def bce(p, t):
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_jol_terms_match_hand_computation():
    # location 0 positive (class 0, v = 0.8), location 1 negative; C = 2
    targets = dict(
        heatmap=torch.tensor([[[0.8, 0.], [0., 0.]]]),
        pos_mask=torch.tensor([[True, False]]),
        bboxes=torch.tensor([[[0., 0., 16., 8.], [0., 0., 0., 0.]]]),
        distances=torch.tensor([[[4., 4., 12., 4.], [0., 0., 0., 0.]]]),
        orc=torch.tensor([[[0.2, 0.3, 0.4, 0.5], [0., 0., 0., 0.]]]),
        ratios=torch.tensor([[0.6, 0.]]),
        area_weights=torch.tensor([[0.9, 0.]]))
    cls = torch.tensor([[[0.5, -1.0], [-2.0, 0.1]]])
    obj = torch.tensor([[0.3, -1.5]])
    pred_bboxes = torch.tensor([[[0., 0., 12., 8.], [0., 0., 8., 8.]]])
    pred_dist = torch.tensor([[[4., 4., 8., 4.], [4., 4., 4., 4.]]])
    pred_orc = torch.tensor([[[0.25, 0.3, 0.4, 0.4], [0.5, 0.5, 0.5, 0.5]]])
    pred_ratio = torch.tensor([[0.5, 0.7]])
    loss = JOLLoss()
    out = loss(cls, obj, pred_bboxes, pred_dist, pred_orc, pred_ratio,
               targets, stride=8, img_area=64 * 64)

    delta, num_classes = 0.01, 2
    scale = 2 - 16 * 8 / 4096
    iou_err = scale * (1 - 0.75)  # IoU 96/128, enclosing box = GT box
    obb_err = 0.05**2 + 0.1**2
    area_err = 0.1**2
    l_err = scale * 0.5 * 0.5**2  # SmoothL1(beta=1) of |8 - 12| / 8
    s_loc = math.exp(-(iou_err + obb_err + area_err))

    def focal(x, t):
        return bce(sigmoid(x), t) * abs(t - sigmoid(x))**2

    dyn = (sigmoid(0.5) + 0.8) / 2
    expected = dict(
        loss_fg=2 * focal(0.3, 1 - delta + delta / 2) * (0.8 + s_loc) / 2,
        loss_bg=2 * focal(-1.5, delta / 2),
        loss_pos=0.9 * bce(sigmoid(0.5) * s_loc, 1 - delta +
                           delta / num_classes),
        loss_neg=0.9 * bce(sigmoid(-1.0), delta / num_classes),
        loss_iou=0.9 * dyn * iou_err,
        loss_obb=0.9 * dyn * obb_err,
        loss_area=16 * 0.9 * dyn * area_err,
        loss_l=0.2 * 0.9 * dyn * l_err)
    assert set(out) == set(expected)
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value, rel=1e-5), name

    per_location = loss(cls, obj, pred_bboxes, pred_dist, pred_orc,
                        pred_ratio, targets, stride=8, img_area=64 * 64,
                        reduction_override='none')
    assert per_location['loss_iou'].shape == (1, 2)
    assert per_location['loss_iou'][0, 1] == 0
    assert per_location['loss_bg'][0, 0] == 0
    assert per_location['box_errors']['loc_quality'][0, 0].item() == \
        pytest.approx(s_loc, rel=1e-6)
    # gradient: the joint score trains the box through s_loc
    pred_bboxes.requires_grad_(True)
    loss(cls, obj, pred_bboxes, pred_dist, pred_orc, pred_ratio, targets,
         stride=8, img_area=4096)['loss_pos'].backward()
    assert pred_bboxes.grad[0, 0].abs().sum() > 0

    # saturated class logits: sigmoid underflows to 0 / rounds to 1, yet the
    # joint-score BCE keeps finite gradients (it is computed from log p)
    for value in (-200., 200.):
        saturated = torch.full_like(cls, value).requires_grad_(True)
        out = loss(saturated, obj, pred_bboxes.detach(), pred_dist, pred_orc,
                   pred_ratio, targets, stride=8, img_area=4096)
        out['loss_pos'].backward()
        assert torch.isfinite(out['loss_pos'])
        assert torch.isfinite(saturated.grad).all()


def test_jol_reduce_normalises_per_image():
    terms = dict(
        loss_x=torch.tensor([[1., 2., 3.], [4., 0., 0.]]),
        num_pos=torch.tensor([2., 1.]))
    assert JOLLoss.reduce(terms)['loss_x'].item() == pytest.approx(
        (6 / 2 + 4 / 1) / 2)
    with pytest.raises(MMRSKDError, match='reduction'):
        JOLLoss(reduction='sum')


def test_loss_terms_sum_to_loss_and_targets_are_shared():
    torch.manual_seed(0)
    head = tiny_head()
    head.init_weights()
    feats = [torch.randn(2, 4, s, s) for s in (8, 4, 2)]
    gts = [
        gt([[30., 30., 30., 12., 0.3]], [0]),
        gt([[20., 36., 16., 12., 0.], [44., 30., 36., 20., 1.0]], [1, 0])
    ]
    outs = head(feats)
    losses = head.loss_by_feat(*outs, gts, [{}, {}])
    assert set(losses) == {f'loss_{t}' for t in
                           ('fg', 'bg', 'pos', 'neg', 'iou', 'obb', 'area',
                            'l')}
    terms, targets = head.loss_terms_by_feat(*outs, gts)
    for name, value in losses.items():
        manual = sum((lv[name].sum(-1) / lv['num_pos']).sum() / 2
                     for lv in terms)
        assert value.item() == pytest.approx(manual.item(), rel=1e-6)
    assert sum(int(t['pos_mask'].sum()) for t in targets) > 0
    # a second head reuses the targets (teacher-student distillation)
    other = tiny_head()
    terms_t, targets_t = other.loss_terms_by_feat(
        *other(feats), None, batch_targets=targets)
    assert targets_t is targets
    assert terms_t[0]['loss_iou'].shape == terms[0]['loss_iou'].shape


def test_images_without_objects_only_train_background():
    torch.manual_seed(0)
    head = tiny_head()
    head.init_weights()
    assert torch.sigmoid(head.conv_locs[0].bias[-1]).item() == \
        pytest.approx(0.01)
    empty = InstanceData(
        bboxes=QuadriBoxes(torch.zeros(0, 8)),
        labels=torch.zeros(0, dtype=torch.long))
    feats = [torch.randn(1, 4, s, s) for s in (8, 4, 2)]
    losses = head.loss_by_feat(*head(feats), [empty], [{}])
    assert losses['loss_bg'] > 0
    assert all(value == 0 for name, value in losses.items()
               if name != 'loss_bg')


def test_head_errors_are_one_line():
    with pytest.raises(MMRSKDError, match='in_channels'):
        tiny_head(in_channels=(4, 4))
    with pytest.raises(MMRSKDError, match="'qbox' or 'rbox'"):
        tiny_head(predict_box_type='hbox')
    with pytest.raises(MMRSKDError, match='assigner'):
        tiny_head(train_cfg=dict())


# --------------------------------------------------------------- detector
def detector_batch(size, rboxes, labels, num_images=1):
    generator = torch.Generator().manual_seed(0)
    samples = []
    for img_id in range(num_images):
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_id=img_id, img_shape=(size, size), ori_shape=(size, size),
                 pad_shape=(size, size), scale_factor=(1., 1.)))
        sample.gt_instances = gt(rboxes, labels)
        sample.ignored_instances = InstanceData(
            bboxes=QuadriBoxes(torch.zeros(0, 8)),
            labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                      generator=generator) for _ in range(num_images)
    ]
    return dict(inputs=inputs, data_samples=samples)


def overfit_and_score(model_cfg, data, iters, lr, classes):
    """Train on one batch, recalibrate BN on it, predict and score."""
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for _ in range(iters):
        losses = model(**model.data_preprocessor(data, True), mode='loss')
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    # BN running statistics of a few steps are far from the batch's own
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model(**model.data_preprocessor(data, True), mode='tensor')
        model.eval()
        results = model(**model.data_preprocessor(data, False),
                        mode='predict')
    metric = RSDetMetric(box_type='qbox', classwise=False)
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, [r.to_dict() for r in results])
    return history, results, metric.evaluate(len(results))['rsdet/mAP']


def test_gghl_darknet53_overfits_one_batch_and_is_scored():
    cfg = Config.fromfile(
        osp.join(REPO,
                 'configs/gghl/gghl_darknet53_fpn_1xb4-12e_synthetic-dota.py'))
    cfg.model.neck.out_channels = (16, 32, 64)
    cfg.model.neck.dropblock_cfg = None  # 2x2 maps at 64 px
    cfg.model.bbox_head.in_channels = (16, 32, 64)
    cfg.model.bbox_head.feat_channels = (32, 64, 128)
    cfg.model.bbox_head.num_classes = 3
    cfg.model.test_cfg.score_thr = 0.001
    data = detector_batch(
        64, [[19., 22., 26., 10., 0.5], [42., 42., 29., 13., -0.3]], [0, 2])
    history, results, mean_ap = overfit_and_score(
        cfg.model, data, iters=25, lr=2e-3, classes=('a', 'b', 'c'))
    assert history[-1] < 0.5 * history[0]
    # mmdet's detector hands the boxes back as (K, 8) qbox tensors
    assert results[0].pred_instances.bboxes.shape[1:] == (8, )
    assert 0 < mean_ap <= 1
