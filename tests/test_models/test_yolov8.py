"""YOLOv8: architecture sizes, assigner, losses, prediction and training."""
import importlib.util
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones.csp_darknet import SPPBottleneck
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmrskd.models.layers import CSPLayerWithTwoConv
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import safe_load

# (deepen, widen, last stage width, ultralytics parameter count at 80
# classes). ultralytics counts 16 more: the frozen 1x1 conv holding the DFL
# bin values, a buffer here.
SIZES = {
    'n': (0.33, 0.25, 1024, 3_157_200),
    's': (0.33, 0.50, 1024, 11_166_560),
    'm': (0.67, 0.75, 768, 25_902_640),
    'l': (1.00, 1.00, 512, 43_691_520),
}
TEST_CFG = dict(nms_pre=1000, score_thr=0.001,
                nms=dict(type='nms', iou_threshold=0.7), max_per_img=100)


def yolov8_cfg(deepen=0.33, widen=0.0625, last=1024, num_classes=3):
    widths = [256, 512, last]
    return dict(
        type='mmdet.SingleStageDetector',
        data_preprocessor=dict(type='mmdet.DetDataPreprocessor',
                               mean=[0., 0., 0.], std=[255., 255., 255.],
                               bgr_to_rgb=True, pad_size_divisor=32),
        backbone=dict(type='YOLOv8CSPDarknet', deepen_factor=deepen,
                      widen_factor=widen, last_stage_out_channels=last),
        neck=dict(type='YOLOv8PAFPN', deepen_factor=deepen,
                  widen_factor=widen, in_channels=widths,
                  out_channels=widths),
        bbox_head=dict(type='YOLOv8Head', num_classes=num_classes,
                       widen_factor=widen, in_channels=widths),
        train_cfg=dict(assigner=dict(type='BatchTaskAlignedAssigner')),
        test_cfg=TEST_CFG)


def data_sample(boxes, labels, size, scale_factor=(1., 1.)):
    sample = DetDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size),
        pad_shape=(size, size), batch_input_shape=(size, size),
        scale_factor=scale_factor))
    sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float)
                               .view(-1, 4)),
        labels=torch.tensor(labels, dtype=torch.long))
    return sample


def iou(box_a, box_b):
    """IoU of two x1y1x2y2 boxes (plain Python)."""
    w = max(0., min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    h = max(0., min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = w * h
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    return inter / (area(box_a) + area(box_b) - inter)


# --------------------------------------------------------------- sizes
@pytest.mark.parametrize('size', sorted(SIZES))
def test_parameter_counts_match_ultralytics(size):
    deepen, widen, last, published = SIZES[size]
    model = MODELS.build(yolov8_cfg(deepen, widen, last, num_classes=80))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - published) / published < 0.02
    assert count == published - 16  # exact architecture match


def test_feature_shapes_and_depths():
    model = MODELS.build(yolov8_cfg(0.33, 0.5, 1024))
    c2f = [m for m in model.backbone.modules()
           if isinstance(m, CSPLayerWithTwoConv)]
    assert [len(m.blocks) for m in c2f] == [1, 2, 2, 1]
    assert all(m.blocks[0].add_identity for m in c2f)
    assert not any(m.blocks[0].add_identity for m in model.neck.modules()
                   if isinstance(m, CSPLayerWithTwoConv))
    feats = model.backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (128, 8, 12), (256, 4, 6), (512, 2, 3)]
    outs = model.neck(feats)
    assert [tuple(f.shape[1:]) for f in outs] == [
        (128, 8, 12), (256, 4, 6), (512, 2, 3)]
    cls_scores, bbox_preds, dists = model.bbox_head(outs)
    assert [tuple(c.shape[1:]) for c in cls_scores] == [
        (3, 8, 12), (3, 4, 6), (3, 2, 3)]
    assert dists[0].shape[1] == 4 * 16 and bbox_preds[0].shape[1] == 4


def test_sppf_equals_chained_5x5_pooling():
    torch.manual_seed(0)
    spp = SPPBottleneck(8, 8, kernel_sizes=(5, 9, 13)).eval()
    x = torch.randn(2, 8, 11, 7)
    mid = spp.conv1(x)
    pooled = [mid]
    for _ in range(3):  # YOLOv8's SPPF
        pooled.append(F.max_pool2d(pooled[-1], 5, stride=1, padding=2))
    torch.testing.assert_close(spp(x), spp.conv2(torch.cat(pooled, 1)))


def test_backbone_freezing_and_bad_config():
    model = MODELS.build(dict(type='YOLOv8CSPDarknet', widen_factor=0.0625,
                              deepen_factor=0.33, frozen_stages=1))
    model.train()
    assert not any(p.requires_grad for p in model.stage1.parameters())
    assert all(p.requires_grad for p in model.stage2.parameters())
    assert not model.stage1[0].bn.training
    with pytest.raises(MMRSKDError, match=r'out_indices=\(5,\)'):
        MODELS.build(dict(type='YOLOv8CSPDarknet', out_indices=(5, )))


# ------------------------------------------------------------- assigner
def reference_assign(pred_bboxes, pred_scores, points, gt_labels, gt_bboxes,
                     gt_valid, topk, alpha, beta, eps=1e-9):
    """YOLOv8 task alignment written out with Python loops."""
    batch, num_points, num_classes = pred_scores.shape
    labels = torch.full((batch, num_points), num_classes)
    scores = torch.zeros(batch, num_points, num_classes)
    bboxes = torch.zeros(batch, num_points, 4)
    for b in range(batch):
        gts = [m for m in range(gt_bboxes.shape[1]) if gt_valid[b, m]]
        ious, metric, chosen = {}, {}, {}
        for m in gts:
            box = gt_bboxes[b, m].tolist()
            inside = [n for n in range(num_points)
                      if min(points[n, 0] - box[0], points[n, 1] - box[1],
                             box[2] - points[n, 0],
                             box[3] - points[n, 1]) > eps]
            for n in inside:
                ious[m, n] = iou(box, pred_bboxes[b, n].tolist())
                metric[m, n] = (pred_scores[b, n, gt_labels[b, m]]**alpha *
                                ious[m, n]**beta).item()
            chosen[m] = sorted(inside, key=lambda n: -metric[m, n])[:topk]
        owner = {}
        for m in gts:
            for n in chosen[m]:
                if n not in owner or ious[m, n] > ious[owner[n], n]:
                    owner[n] = m
        for m in gts:
            mine = [n for n, o in owner.items() if o == m]
            if not mine:
                continue
            best_metric = max(metric[m, n] for n in mine)
            best_iou = max(ious[m, n] for n in mine)
            for n in mine:
                labels[b, n] = gt_labels[b, m]
                bboxes[b, n] = gt_bboxes[b, m]
                scores[b, n, gt_labels[b, m]] = (
                    metric[m, n] * best_iou / (best_metric + eps))
    return labels, bboxes, scores


def test_assigner_hand_computed_case():
    assigner = TASK_UTILS.build(dict(type='BatchTaskAlignedAssigner',
                                     num_classes=2, topk=1))
    points = torch.tensor([[5., 5.], [2., 2.], [15., 5.]])
    pred_bboxes = torch.tensor([[[0., 0., 10., 10.], [0., 0., 5., 5.],
                                 [10., 0., 20., 10.]]])
    pred_scores = torch.tensor([[[0.1, 0.81], [0.2, 0.64], [0.9, 0.9]]])
    gt = dict(gt_labels=torch.tensor([[1]]),
              gt_bboxes=torch.tensor([[[0., 0., 10., 10.]]]),
              gt_valid=torch.tensor([[True]]))
    # metrics: 0.9 * 1**6 = 0.9 and 0.8 * 0.25**6; point 3 lies outside
    result = assigner.assign(pred_bboxes, pred_scores, points, **gt)
    assert result['fg_mask'].tolist() == [[True, False, False]]
    assert result['labels'].tolist() == [[1, 2, 2]]
    torch.testing.assert_close(result['scores'][0, 0], torch.tensor([0., 1.]))
    assigner.topk = 2
    result = assigner.assign(pred_bboxes, pred_scores, points, **gt)
    assert result['fg_mask'].tolist() == [[True, True, False]]
    # second point: metric scaled so the best point gets the best IoU (1)
    torch.testing.assert_close(
        result['scores'][0, 1, 1], torch.tensor(0.8 * 0.25**6 / 0.9))
    # a point inside two objects goes to the one its box overlaps most
    two = dict(gt_labels=torch.tensor([[1, 0]]),
               gt_bboxes=torch.tensor([[[0., 0., 10., 10.],
                                        [1., 1., 6., 6.]]]),
               gt_valid=torch.tensor([[True, True]]))
    result = assigner.assign(pred_bboxes, pred_scores, points, **two)
    # point 2 (box 0,0,5,5) overlaps gt 2 by 16/25 > 1/4: it moves there
    assert result['labels'].tolist() == [[1, 0, 2]]
    assert result['gt_inds'].tolist() == [[0, 1, 0]]


@pytest.mark.parametrize('seed', [0, 1])
def test_assigner_matches_loop_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    batch, num_classes = 2, 3
    ys, xs = torch.meshgrid(torch.arange(12.), torch.arange(12.),
                            indexing='ij')
    points = torch.stack([xs.flatten(), ys.flatten()], 1) * 4 + 2
    num_points = len(points)
    distances = torch.rand(batch, num_points, 4, generator=gen) * 12 + 1
    pred_bboxes = torch.cat([points - distances[..., :2],
                             points + distances[..., 2:]], -1)
    pred_scores = torch.rand(batch, num_points, num_classes, generator=gen)
    corners = torch.rand(batch, 5, 2, generator=gen) * 36
    sizes = torch.rand(batch, 5, 2, generator=gen) * 16 + 2
    gt_bboxes = torch.cat([corners, corners + sizes], -1)
    gt_labels = torch.randint(0, num_classes, (batch, 5), generator=gen)
    gt_valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    gt_labels[1, 3:] = -1  # padding may hold anything

    assigner = TASK_UTILS.build(dict(type='BatchTaskAlignedAssigner',
                                     num_classes=num_classes, topk=4))
    result = assigner.assign(pred_bboxes, pred_scores, points, gt_labels,
                             gt_bboxes, gt_valid)
    labels, bboxes, scores = reference_assign(pred_bboxes, pred_scores,
                                              points, gt_labels, gt_bboxes,
                                              gt_valid, topk=4, alpha=0.5,
                                              beta=6.0)
    assert (labels < num_classes).sum() > 10  # the case is not trivial
    assert torch.equal(result['labels'], labels)
    assert torch.equal(result['fg_mask'], labels < num_classes)
    torch.testing.assert_close(result['bboxes'], bboxes)
    torch.testing.assert_close(result['scores'], scores)


def test_assigner_without_objects():
    assigner = TASK_UTILS.build(dict(type='BatchTaskAlignedAssigner',
                                     num_classes=2))
    result = assigner.assign(torch.rand(2, 5, 4), torch.rand(2, 5, 2),
                             torch.rand(5, 2), torch.zeros(2, 0).long(),
                             torch.zeros(2, 0, 4), torch.zeros(2, 0).bool())
    assert not result['fg_mask'].any() and (result['labels'] == 2).all()
    assert result['scores'].abs().sum() == 0


# ---------------------------------------------------------------- head
def reference_ciou(pred, target, eps=1e-7):
    """CIoU (Zheng et al., AAAI 2020) of aligned x1y1x2y2 boxes."""
    iou_ = torch.tensor([iou(p.tolist(), t.tolist())
                         for p, t in zip(pred, target)])
    centre_p = (pred[:, :2] + pred[:, 2:]) / 2
    centre_t = (target[:, :2] + target[:, 2:]) / 2
    enclose = (torch.max(pred[:, 2:], target[:, 2:]) -
               torch.min(pred[:, :2], target[:, :2]))
    rho2 = ((centre_p - centre_t)**2).sum(1)
    c2 = (enclose**2).sum(1) + eps
    wp, hp = (pred[:, 2:] - pred[:, :2]).unbind(1)
    wt, ht = (target[:, 2:] - target[:, :2]).unbind(1)
    v = 4 / math.pi**2 * (torch.atan(wt / ht) - torch.atan(wp / hp))**2
    alpha = v / (1 - iou_ + v + eps)
    return iou_ - rho2 / c2 - alpha * v


def test_head_outputs_are_bin_expectations_in_pixels():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='YOLOv8Head', num_classes=2,
                             in_channels=[16, 32, 64]))
    feats = [torch.randn(2, c, s, s) for c, s in ((16, 8), (32, 4),
                                                  (64, 2))]
    _, bbox_preds, dists = head(feats)
    for level, stride in enumerate((8, 16, 32)):
        logits = dists[level][1, :, 1, 0].view(4, 16)
        expected = (logits.softmax(1) * torch.arange(16.)).sum(1) * stride
        torch.testing.assert_close(bbox_preds[level][1, :, 1, 0], expected)


def test_head_init_priors():
    head = MODELS.build(dict(type='YOLOv8Head', num_classes=20,
                             in_channels=[16, 32, 64]))
    head.init_weights()
    for stride, cls_pred, reg_pred in zip((8, 16, 32), head.cls_preds,
                                          head.reg_preds):
        prior = math.log(5 / 20 / (640 / stride)**2)
        assert torch.allclose(cls_pred[-1].bias, torch.tensor(prior))
        assert (reg_pred[-1].bias == 1).all()


def test_losses_match_reference():
    torch.manual_seed(0)
    size, num_classes = 64, 3
    model = MODELS.build(yolov8_cfg(num_classes=num_classes))
    model.init_weights()
    head = model.bbox_head
    samples = [data_sample([[4., 6., 30., 40.], [30., 20., 60., 50.]],
                           [0, 2], size),
               data_sample([[10., 10., 50., 44.]], [1], size)]
    feats = model.extract_feat(torch.rand(2, 3, size, size))
    cls_scores, bbox_preds, dists = head(feats)
    losses = head.loss_by_feat(
        cls_scores, bbox_preds, dists,
        [s.gt_instances for s in samples], [s.metainfo for s in samples])

    # reference, from the same forward outputs and the assigner
    points, strides = [], []
    for stride in (8, 16, 32):
        n = size // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n),
                                indexing='ij')
        points.append(torch.stack([xs.flatten(), ys.flatten()], 1) * stride
                      + stride / 2)
        strides.append(torch.full((n * n, ), float(stride)))
    points, strides = torch.cat(points), torch.cat(strides)
    flat = lambda maps: torch.cat(  # noqa: E731
        [m.permute(0, 2, 3, 1).reshape(2, -1, m.shape[1]) for m in maps], 1)
    logits, dist, bins = flat(cls_scores), flat(bbox_preds), flat(dists)
    boxes = torch.cat([points - dist[..., :2], points + dist[..., 2:]], -1)
    gt_bboxes = torch.tensor([[[4., 6., 30., 40.], [30., 20., 60., 50.]],
                              [[10., 10., 50., 44.], [0., 0., 0., 0.]]])
    assigned = head.assigner.assign(
        boxes.detach(), logits.detach().sigmoid(), points,
        torch.tensor([[0, 2], [1, 0]]), gt_bboxes,
        torch.tensor([[True, True], [True, False]]))
    targets, fg = assigned['scores'], assigned['fg_mask']
    assert fg.sum() >= 3
    total = targets.sum().clamp(min=1)
    ref_cls = F.binary_cross_entropy_with_logits(
        logits, targets, reduction='sum') / total
    weight = targets.sum(-1)[fg]
    ref_bbox = (weight * (1 - reference_ciou(boxes[fg],
                                             assigned['bboxes'][fg]))
                ).sum() / total
    pos_points = points.expand(2, -1, -1)[fg]
    pos_strides = strides.expand(2, -1)[fg][:, None]
    gt = assigned['bboxes'][fg]
    sides = torch.cat([pos_points - gt[:, :2], gt[:, 2:] - pos_points], 1)
    sides = (sides / pos_strides).clamp(0, 15 - 0.01)
    left = sides.floor().long()
    bin_logits = bins[fg].view(-1, 4, 16)
    log_p = bin_logits.log_softmax(-1)
    dfl = -(log_p.gather(-1, left[..., None])[..., 0] * (left + 1 - sides) +
            log_p.gather(-1, left[..., None] + 1)[..., 0] * (sides - left))
    ref_dfl = (dfl * weight[:, None]).sum() / total
    batch = 2  # losses scale with the batch size, as in YOLOv8
    torch.testing.assert_close(losses['loss_cls'], 0.5 * batch * ref_cls)
    torch.testing.assert_close(losses['loss_bbox'], 7.5 * batch * ref_bbox,
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses['loss_dfl'],
                               1.5 / 4 * batch * ref_dfl)


def test_loss_without_objects_reaches_every_branch():
    model = MODELS.build(yolov8_cfg())
    sample = data_sample([], [], 64)
    losses = model.loss(torch.rand(1, 3, 64, 64), [sample])
    assert losses['loss_bbox'] == 0 and losses['loss_dfl'] == 0
    assert losses['loss_cls'] > 0
    sum(losses.values()).backward()
    head = model.bbox_head
    assert head.reg_preds[0][-1].weight.grad is not None


def test_training_without_assigner_names_the_config_key():
    cfg = yolov8_cfg()
    cfg.pop('train_cfg')
    model = MODELS.build(cfg)
    sample = data_sample([[1., 1., 9., 9.]], [0], 64)
    with pytest.raises(MMRSKDError, match=r'model\.train_cfg=dict\(assig'):
        model.loss(torch.rand(1, 3, 64, 64), [sample])


def test_predict_decodes_points_and_rescales():
    model = MODELS.build(yolov8_cfg(num_classes=2)).eval()
    head = model.bbox_head
    with torch.no_grad():
        for cls_pred, reg_pred in zip(head.cls_preds, head.reg_preds):
            for conv in (cls_pred[-1], reg_pred[-1]):
                conv.weight.zero_()
            cls_pred[-1].bias.fill_(-20.)
            # every side: bin 2 of 16 -> 2 strides
            reg_pred[-1].bias.copy_(torch.tensor(
                [40. if b == 2 else 0. for b in range(16)] * 4))
        # one confident class-1 detection at stride 16 cells only
        head.cls_preds[1][-1].bias.copy_(torch.tensor([-20., 3.]))
    sample = data_sample([], [], 64, scale_factor=(0.5, 0.5))
    result = model.predict(torch.rand(1, 3, 64, 64), [sample],
                           rescale=True)[0].pred_instances
    # 4x4 cells of stride 16: boxes centre +- 32 px, clipped to the image,
    # then doubled (scale_factor 0.5); NMS (IoU 0.7) keeps some of them
    assert (result.labels == 1).all()
    torch.testing.assert_close(result.scores[0],
                               torch.tensor(3.).sigmoid())
    expected = []
    for y in (8., 24., 40., 56.):
        for x in (8., 24., 40., 56.):
            box = torch.tensor([x - 32, y - 32, x + 32, y + 32]).clamp(0, 64)
            expected.append(box * 2)
    expected = torch.stack(expected)
    for box in result.bboxes:
        assert (box - expected).abs().sum(1).min() < 1e-3


def test_overfits_one_image():
    torch.manual_seed(0)
    model = MODELS.build(yolov8_cfg(num_classes=2))
    model.init_weights()
    size = 128
    gt = [[16., 20., 60., 80.], [72., 60., 120., 100.]]
    image = torch.zeros(1, 3, size, size)
    for (x1, y1, x2, y2), channel in zip(gt, (0, 1)):
        image[0, channel, int(y1):int(y2), int(x1):int(x2)] = 1.
    sample = data_sample(gt, [0, 1], size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01,
                                  weight_decay=0)
    first = None
    for _ in range(60):
        loss = sum(model.loss(image, [sample]).values())
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 5
    # predict with the batch statistics it trained on: BN running averages
    # (momentum 0.03) lag far behind after 60 steps on a single image
    with torch.no_grad():
        result = model.predict(image, [sample])[0].pred_instances
    for label, box in enumerate(gt):
        top = result.bboxes[result.labels == label][0]
        assert iou(top.tolist(), box) > 0.8


# ------------------------------------------------------ configs and tools
CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'yolov8')


@pytest.mark.parametrize('size', ['s', 'm', 'l'])
@pytest.mark.parametrize('dataset,num_classes', [('dior', 20), ('nwpu', 10)])
def test_configs_build_the_published_sizes(size, dataset, num_classes):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'yolov8_{size}_1xb16-100e_{dataset}.py'))
    model = MODELS.build(cfg.model)
    assert model.bbox_head.num_classes == num_classes
    # the 80-class count minus the classes' share of the 3 final cls convs
    cls_channels = model.bbox_head.cls_preds[0][-1].in_channels
    expected = SIZES[size][3] - 16 - 3 * (cls_channels + 1) * (
        80 - num_classes)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.01, momentum=0.937, nesterov=True,
        weight_decay=5e-4)


def _get_flops_main():
    path = osp.join(osp.dirname(__file__), '..', '..', 'tools',
                    'analysis_tools', 'get_flops.py')
    spec = importlib.util.spec_from_file_location('get_flops', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_get_flops_counts_every_conv(capsys):
    main = _get_flops_main()
    config = osp.join(CONFIG_DIR, 'yolov8_n_1xb8-12e_synthetic-dior.py')
    small = main([config, '--shape', '64', '64'])
    large = main([config, '--shape', '128'])
    assert 'input shape: (128, 128)' in capsys.readouterr().out
    model = MODELS.build(Config.fromfile(config).model).eval()
    assert small['params'] == sum(p.numel() for p in model.parameters())
    # independent count: multiply-adds of every Conv2d, from forward hooks
    conv_flops = []

    def count(module, inputs, output):
        conv_flops.append(output.numel() * module.in_channels //
                          module.groups * math.prod(module.kernel_size))

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    # the rest is the DFL expectation, well under 1%
    assert sum(conv_flops) <= small['flops'] < 1.01 * sum(conv_flops)
    # every map scales with H * W
    assert large['flops'] == pytest.approx(4 * small['flops'], rel=1e-6)
    with pytest.raises(SystemExit):
        main([config, '--shape', '1', '2', '3'])


def _synthetic_cfg(fmt, data_root, work_dir):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'yolov8_n_1xb8-12e_synthetic-{fmt}.py'))

    def move(node):
        if isinstance(node, dict):
            return {key: (data_root if key == 'data_root' else move(value))
                    for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return type(node)(move(value) for value in node)
        return node

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key] = move(cfg[key].to_dict())
    cfg.work_dir = str(work_dir)
    return cfg


def test_synthetic_dior_config_trains_switches_mosaic_and_tests(tmp_path):
    from mmengine.runner import Runner

    from mmrskd.datasets.synthetic import generate
    generate('dior', str(tmp_path / 'dior'), num_images=10, seed=0)
    cfg = _synthetic_cfg('dior', str(tmp_path / 'dior'), tmp_path / 'work')
    cfg.train_dataloader.batch_size = 4
    # epoch 0 with Mosaic, epoch 1 without, then validation
    cfg.train_cfg.update(max_epochs=2, val_interval=2, dynamic_intervals=None)
    cfg.custom_hooks[1].num_last_epochs = 0
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    dataset = runner.train_dataloader.dataset
    assert dataset._skip_type_keys == ('Mosaic', 'RandomAffine')
    checkpoint = safe_load(str(tmp_path / 'work' / 'epoch_2.pth'))
    assert 'ema_state_dict' in checkpoint
    metrics = runner.test()
    assert 0 <= metrics['rsdet/mAP'] <= 1


def test_synthetic_nwpu_config_mosaics_real_files(tmp_path):
    from mmrskd.datasets.synthetic import generate
    from mmrskd.registry import DATASETS
    generate('nwpu', str(tmp_path / 'nwpu'), num_images=10, seed=0)
    cfg = _synthetic_cfg('nwpu', str(tmp_path / 'nwpu'), tmp_path / 'work')
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    sample = dataset[0]
    # Mosaic + affine crop back to one 256 x 256 image, padded with 114
    assert tuple(sample['inputs'].shape) == (3, 256, 256)
    boxes = sample['data_samples'].gt_instances.bboxes.tensor
    assert len(boxes) and (boxes >= 0).all() and (boxes <= 256).all()
    batch = model.data_preprocessor(
        dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]),
        True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
