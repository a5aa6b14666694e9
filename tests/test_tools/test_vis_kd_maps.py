"""tools/analysis_tools/vis_kd_maps.py and the ``kd_maps`` methods of the
ADMD, CSAKD, DKED and LTD losses it draws.

The maps are checked on hand-built tensors against known values; the tool
runs end to end on a tiny synthetic DOTA set with the rotated-RetinaNet ADMD
and LTD configs.
"""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import vis_kd_maps  # noqa: E402

SYNTHETIC_DOTA = ('rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e_'
                  '12e_synthetic-dota.py')
# 4 x 5 cells of stride 8 over a 32 x 40 input
METAS = [dict(batch_input_shape=(32, 40), pad_shape=(32, 40))] * 2


def features(channels=4, sizes=((4, 5), (2, 3)), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, channels, *size, generator=generator)
            for size in sizes]


def hbox_gts(box):
    """Image 0 holds ``box`` (xyxy), image 1 nothing."""
    return [InstanceData(bboxes=torch.tensor([box]), labels=torch.tensor([0])),
            InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))]


def cells(rows, cols, size=(4, 5)):
    """A ``size`` 0/1 map with ones at ``rows`` x ``cols``."""
    expected = torch.zeros(size)
    expected[rows[0]:rows[1], cols[0]:cols[1]] = 1
    return expected


# ------------------------------------------------------------- kd_maps
def test_admd_mask_is_the_discrepancy_mask_times_the_fg_prior():
    preds_S, preds_T = features(seed=0), features(seed=1)
    plain = MODELS.build(dict(type='ADMDLoss', temperature=2.0))
    maps = plain.kd_maps(preds_S=preds_S, preds_T=preds_T)
    assert list(maps) == ['mask']
    for level_map, pred_S, pred_T in zip(maps['mask'], preds_S, preds_T):
        torch.testing.assert_close(
            level_map, plain.discrepancy_mask((pred_S - pred_T)**2)[:, 0])
    # with the prior, the cells whose centre the box covers count twice
    prior = MODELS.build(dict(type='ADMDLoss', temperature=2.0,
                              fg_prior=True))
    gts = hbox_gts([8., 8., 24., 24.])
    with_fg = prior.kd_maps(preds_S, preds_T, gts, METAS)['mask']
    torch.testing.assert_close(with_fg[0][0] / maps['mask'][0][0],
                               1 + cells((1, 3), (1, 3)))
    torch.testing.assert_close(with_fg[0][1], maps['mask'][0][1])


def test_csakd_attention_is_sigmoid_of_query_dot_key():
    loss = MODELS.build(dict(type='CSAKDAttentionAlignmentLoss',
                             in_channels=[4, 4], reduction=2))
    # query = relu(T[:, :2]), key = relu(S[:, :2])
    for projection in (*loss.queries, *loss.keys):
        conv = projection[0]
        torch.nn.init.zeros_(conv.bias)
        conv.weight.data = torch.eye(2, 4).view(2, 4, 1, 1)
    preds_S, preds_T = features(seed=0), features(seed=1)
    maps = loss.kd_maps(preds_S, preds_T)
    assert list(maps) == ['attention']
    for level_map, feat_S, feat_T in zip(maps['attention'], preds_S,
                                         preds_T):
        expected = (feat_T[:, :2].relu() * feat_S[:, :2].relu()).sum(1)
        torch.testing.assert_close(level_map, expected.sigmoid())


def test_dked_gaussian_peaks_at_the_gt_centre_and_responses_are_ddcs():
    loss = MODELS.build(dict(
        type='DKEDFeatureResponseLoss', in_channels=4, student_channels=2,
        assigner=dict(type='GGHLAssigner', level_size_thresholds=(),
                      window_radius_max=(4, ))))
    feat_S, feat_T = features(2, [(4, 5)])[0], features(4, [(4, 5)])[0]
    gts = [InstanceData(
        bboxes=RotatedBoxes(torch.tensor([[20., 12., 16., 8., 0.3]])),
        labels=torch.tensor([0]))] * 2
    maps = loss.kd_maps([feat_S], [feat_T], batch_gt_instances=gts,
                        batch_img_metas=METAS)
    assert sorted(maps) == ['gaussian', 'response_S', 'response_T']
    gaussian = maps['gaussian'][0]
    assert gaussian.shape == (2, 4, 5)
    # the centroid (20, 12) lies in cell (row 1, col 2)
    assert gaussian[0, 1, 2] == 1 and gaussian.max() == 1
    assert gaussian.flatten(1).argmax(1).tolist() == [1 * 5 + 2] * 2
    with torch.no_grad():
        response_T = loss.teacher_ddcs[0](feat_T)
        response_S = loss.student_ddcs[0](loss.adapters[0](feat_S))
    torch.testing.assert_close(maps['response_T'][0],
                               response_T.abs().mean(1))
    torch.testing.assert_close(maps['response_S'][0],
                               response_S.abs().mean(1))
    # mapped batch_targets: G is the largest class target, (h, w) order
    heatmap = torch.zeros(2, 20, 3)
    heatmap[1, 7, 2] = 0.5
    from_targets = loss.kd_maps([feat_S], [feat_T],
                                batch_targets=[dict(heatmap=heatmap)])
    torch.testing.assert_close(from_targets['gaussian'][0][1],
                               0.5 * cells((1, 2), (2, 3)))


def test_ltd_tasd_regions_mark_the_cells_of_the_gt():
    # two priors per position, both centred on the cell corner (8 * col,
    # 8 * row): the centres inside [4, 20] are rows and cols 1-2
    loss = MODELS.build(dict(
        type='LTDTASDLoss',
        terms=dict(loss_kd=dict(task='cls', region='gt_center')),
        prior_generator=dict(type='mmdet.AnchorGenerator', ratios=[1.0, 2.0],
                             octave_base_scale=1, scales_per_octave=1,
                             strides=[8])))
    logits = torch.zeros(2, 2 * 3, 4, 5)
    maps = loss.kd_maps(logits, logits, hbox_gts([4., 4., 20., 20.]), METAS)
    assert list(maps) == ['gt_center']
    torch.testing.assert_close(maps['gt_center'][0][0],
                               cells((1, 3), (1, 3)))
    assert not maps['gt_center'][0][1].any()


def test_ltd_tasd_positives_include_the_matching_anchor():
    loss = MODELS.build(dict(
        type='LTDTASDLoss', terms=dict(loss_kd=dict(task='cls', region='pos')),
        prior_generator=dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                             octave_base_scale=2, scales_per_octave=1,
                             strides=[8])))
    logits = torch.zeros(2, 3, 4, 5)
    # the anchor of cell (row 2, col 3): 16 px centred on (24, 16)
    maps = loss.kd_maps(logits, logits, hbox_gts([16., 8., 32., 24.]), METAS)
    region = maps['pos'][0]
    assert region[0, 2, 3] == 1 and not region[1].any()
    assert set(region.unique().tolist()) <= {0.0, 1.0}


def test_ltd_attention_mask_averages_the_two_attentions():
    loss = MODELS.build(dict(type='LTDAttentionLoss', temperature=0.5))
    preds_S, preds_T = features(seed=0), features(seed=1)
    raw_S = features(channels=2, seed=2)
    maps = loss.kd_maps(preds_S, preds_T, feats_S=raw_S)
    assert list(maps) == ['mask']

    def attention(feat):
        num_imgs, _, height, width = feat.shape
        weights = (feat.abs().mean(1).flatten(1) / 0.5).softmax(1)
        return height * width * weights.view(num_imgs, height, width)

    for level_map, src_S, pred_T in zip(maps['mask'], raw_S, preds_T):
        torch.testing.assert_close(
            level_map, (attention(src_S) + attention(pred_T)) / 2)


# ------------------------------------------------------------ the tool
@pytest.fixture(scope='module')
def dota_root(tmp_path_factory):
    from mmrskd.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('vis_dota')
    generate('dota', str(root), 4, seed=0)  # 3 train, 1 val, 256 px
    return str(root)


@pytest.mark.parametrize('method,split,maps', [
    ('admd', 'train', ['loss_admd_mask']),
    ('ltd', 'val', ['loss_att_mask', 'loss_tasd_pos', 'loss_tasd_vlr']),
])
def test_tool_draws_every_map_over_the_images(method, split, maps, dota_root,
                                              tmp_path, capsys):
    config = osp.join(REPO, 'configs', method,
                      f'{method}_{SYNTHETIC_DOTA}')
    vis_kd_maps.main([
        config, '--out-dir', str(tmp_path), '--num-images', '2', '--split',
        split, '--cfg-options',
        f'train_dataloader.dataset.data_root={dota_root}/',
        f'val_dataloader.dataset.data_root={dota_root}/',
        # a teacher checkpoint that does not exist: a random teacher
        f'model.teacher_ckpt={tmp_path}/missing.pth'])
    stems = ['P0000', 'P0001'] if split == 'train' else ['P0003']
    names = sorted(f'{name}_P{level}.png' for name in maps
                   for level in range(3, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == stems
    for stem in stems:
        assert sorted(p.name for p in (tmp_path / stem).iterdir()) == names
        img = cv2.imread(osp.join(dota_root, split, 'images', f'{stem}.png'))
        for name in names:
            drawn = cv2.imread(str(tmp_path / stem / name))
            assert drawn.shape == img.shape
            assert np.abs(drawn.astype(int) - img).mean() > 5
    out = capsys.readouterr().out
    assert f'wrote {len(stems) * len(names)} PNG files' in out


@pytest.mark.parametrize('config,message', [
    ('configs/missing.py', 'config file not found'),
    ('configs/demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
     'not a distiller config'),
    ('configs/demo/pkd_' + SYNTHETIC_DOTA, 'has kd_maps'),
])
def test_tool_gives_one_line_errors(config, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        vis_kd_maps.main([osp.join(REPO, config), '--out-dir',
                          str(tmp_path), '--cfg-options',
                          'model.teacher_ckpt=None'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
