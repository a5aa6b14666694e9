"""LO-Det: CondConv, CSA and DRF blocks, the CSA-DRF-FPN neck and a tiny
training run of MobileNetV2 + CSA-DRF-FPN + GGHL head."""
import os.path as osp

import mmrskd  # noqa: F401  (compat layer before mmrotate is imported)
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import ModulatedDeformConv2dPack
from mmengine.config import Config

from mmrskd.models.layers import CondConv2d, CSABlock, DRFBlock
from mmrskd.models.layers.csa_block import channel_shuffle
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

from test_gghl import REPO, detector_batch, overfit_and_score


@pytest.mark.parametrize('num_experts,groups,bias', [(1, 6, True),
                                                     (3, 1, False)])
def test_cond_conv_matches_per_sample_reference(num_experts, groups, bias):
    torch.manual_seed(0)
    conv = CondConv2d(6, 6, 3, padding=2, dilation=2, groups=groups,
                      bias=bias, num_experts=num_experts)
    x = torch.randn(2, 6, 7, 9)
    out = conv(x)
    assert out.shape == (2, 6, 7, 9)
    for i in range(2):
        gates = torch.sigmoid(conv.routing.weight @ x[i].mean((1, 2)) +
                              conv.routing.bias)
        weight = (gates[:, None, None, None, None] * conv.weight).sum(0)
        b = (gates[:, None] * conv.bias).sum(0) if bias else None
        expected = F.conv2d(x[i:i + 1], weight, b, padding=2, dilation=2,
                            groups=groups)
        assert torch.allclose(out[i:i + 1], expected, atol=1e-5)
    out.sum().backward()
    assert conv.routing.weight.grad.abs().sum() > 0
    with pytest.raises(MMRSKDError, match='divisible by groups'):
        CondConv2d(6, 4, 3, groups=3)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(8.).view(1, 8, 1, 1)
    shuffled = channel_shuffle(x, 4).flatten().tolist()
    assert shuffled == [0., 2., 4., 6., 1., 3., 5., 7.]


def test_csa_block_keeps_and_transforms_the_right_channels():
    torch.manual_seed(0)
    block = CSABlock(8, shuffle_groups=4).eval()
    x = torch.randn(2, 8, 5, 5)
    out = block(x)
    transformed = block.transform(x[:, 4:])
    expected = channel_shuffle(torch.cat([x[:, :4], transformed], 1), 4)
    assert torch.equal(out, expected)
    # 4 shuffle groups of 2: [k0 k1 | k2 k3 | t0 t1 | t2 t3] ->
    # [k0 k2 t0 t2 k1 k3 t1 t3]; kept channels pass untouched
    assert torch.equal(out[:, [0, 4, 1, 5]], x[:, :4])

    expand = CSABlock(4, expand=True, shuffle_groups=4).eval()
    out = expand(x[:, :4])
    assert out.shape == (2, 8, 5, 5)
    assert torch.equal(out[:, [0, 4, 1, 5]], x[:, :4])
    assert torch.equal(out[:, [2, 6, 3, 7]], expand.transform(x[:, :4]))
    # depthwise 3x3 + BN without activation, then pointwise + BN + act
    dw = expand.transform.depthwise_conv
    assert dw.conv.groups == 4 and not dw.with_activation
    with pytest.raises(MMRSKDError, match='shuffle_groups'):
        CSABlock(6, shuffle_groups=4)


def test_drf_block_sums_two_dilated_dynamic_branches():
    torch.manual_seed(0)
    block = DRFBlock(8, dilations=(2, 3)).eval()
    x = torch.randn(2, 8, 9, 9)
    out = block(x)
    assert out.shape == (2, 4, 9, 9)
    expected = block.branches[0](x[:, :4]) + block.branches[1](x[:, 4:])
    assert torch.equal(out, expected)
    dilations = [branch[0].dilation for branch in block.branches]
    assert dilations == [2, 3]
    assert all(branch[0].groups == 4 for branch in block.branches)
    with pytest.raises(MMRSKDError, match='even'):
        DRFBlock(7, dilations=(2, 3))


@pytest.mark.parametrize('downsample', [dict(type='DCNv2', deform_groups=1),
                                        None])
def test_csa_drf_fpn_shapes_and_backward(downsample):
    torch.manual_seed(0)
    neck = MODELS.build(
        dict(
            type='CSADRFFPN',
            in_channels=(8, 12, 40),
            out_channels=(16, 32, 64),
            downsample_conv_cfg=downsample,
            dropblock_cfg=dict(
                type='mmdet.DropBlock', drop_prob=0.1, block_size=3,
                warmup_iters=0)))
    neck.init_weights()
    feats = [torch.randn(2, c, s, s, requires_grad=True)
             for c, s in ((8, 16), (12, 8), (40, 4))]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 16), (2, 32, 8, 8),
                                              (2, 64, 4, 4)]
    sum(o.mean() for o in outs).backward()
    # the bottom-up path reaches the top level from the lowest input
    assert feats[0].grad.abs().sum() > 0
    is_dcn = [isinstance(d, ModulatedDeformConv2dPack)
              for d in neck.downsamples]
    assert is_dcn == [downsample is not None] * 2
    assert [d.out_channels for d in neck.downsamples] == [8, 12]
    assert [d.in_channels for d in neck.downsamples] == [8, 8 + 12]
    if downsample is not None:
        assert neck.downsamples[0].conv_offset.weight.grad is not None
    # DRF on the two upper levels only, with LO-Det's dilations
    drfs = [[m for m in conv_set if isinstance(m, DRFBlock)]
            for conv_set in neck.conv_sets]
    assert [len(d) for d in drfs] == [0, 1, 1]
    assert [b[0].dilation for b in drfs[2][0].branches] == [4, 6]


def test_csa_drf_fpn_rejects_mismatched_levels():
    with pytest.raises(MMRSKDError, match='one entry per level'):
        MODELS.build(dict(type='CSADRFFPN', out_channels=(16, 32)))
    neck = MODELS.build(
        dict(type='CSADRFFPN', in_channels=(8, 12, 40),
             out_channels=(16, 32, 64), dropblock_cfg=None))
    with pytest.raises(MMRSKDError, match='out_indices'):
        neck([torch.randn(1, 8, 8, 8)])


def test_lodet_configs_build_the_paper_layout():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lodet/'
                 'lodet_mobilenetv2_csa-drf-fpn_1xb10-ms-121e_dota.py'))
    assert cfg.model.backbone.out_indices == (2, 4, 7)
    assert cfg.train_dataloader.dataset.pipeline[1].box_type == 'qbox'
    assert not any(t.type.endswith('ConvertBoxType')
                   for t in cfg.train_dataloader.dataset.pipeline)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    outs = model(torch.randn(1, 3, 64, 64), mode='tensor')
    # GGHL's output layout: C class logits + 10 localisation channels
    assert [o.size(1) for o in outs[0]] == [15] * 3
    assert sum(lst[0].size(1) for lst in outs[1:]) == 10
    assert [o.shape[-1] for o in outs[0]] == [8, 4, 2]


def test_lodet_overfits_one_batch_and_is_scored():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lodet/'
                 'lodet_mobilenetv2_csa-drf-fpn_1xb4-12e_synthetic-dota.py'))
    cfg.model.neck.out_channels = (16, 32, 64)
    cfg.model.neck.dropblock_cfg = None
    cfg.model.bbox_head.in_channels = (16, 32, 64)
    cfg.model.bbox_head.num_classes = 3
    cfg.model.test_cfg.score_thr = 0.001
    data = detector_batch(
        128, [[38., 45., 51., 19., 0.5], [83., 83., 58., 26., -0.3]], [0, 2],
        num_images=2)
    history, results, mean_ap = overfit_and_score(
        cfg.model, data, iters=40, lr=2e-3, classes=('a', 'b', 'c'))
    assert history[-1] < 0.2 * history[0]
    assert all(r.pred_instances.bboxes.shape[1:] == (8, ) for r in results)
    assert mean_ap > 0.5
