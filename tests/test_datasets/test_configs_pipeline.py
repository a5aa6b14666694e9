"""The base dataset configs, and the qbox -> rbox pipeline they use."""
import copy
import math
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmrotate.structures import RotatedBoxes

from mmrskd.datasets.synthetic import default_classes
from mmrskd.registry import DATASETS

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                      'datasets')
DATASET_TYPES = {
    'dota': 'DOTADataset', 'dior': 'DIORDataset', 'dior_r': 'DIORRDataset',
    'hrsc': 'HRSCDataset', 'nwpu_vhr10': 'NWPUVHR10Dataset'
}
SYNTHETIC = {  # config -> generator format
    'dota': 'dota', 'dior': 'dior', 'dior_r': 'dior', 'hrsc': 'hrsc',
    'nwpu_vhr10': 'nwpu'
}


def load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))


def dataset_cfgs(loader_cfg):
    """The dataset configs of a dataloader (several for ConcatDataset),
    unserialised: mmengine's serialisation runs a slow gc.collect()."""
    dataset = loader_cfg['dataset']
    datasets = dataset.get('datasets', [dataset])
    for cfg in datasets:
        cfg['serialize_data'] = False
    return datasets


def le90(rboxes):
    """(n, 5) rboxes with w >= h and the angle in [-pi/2, pi/2)."""
    return RotatedBoxes(np.asarray(rboxes, np.float32)).regularize_boxes(
        'le90').numpy()


def angle_gap(a, b):
    """Distance of two box angles, which are defined modulo pi."""
    return np.abs((np.asarray(a) - b + np.pi / 2) % np.pi - np.pi / 2)


@pytest.mark.parametrize('name', sorted(DATASET_TYPES))
def test_real_configs(name, tmp_path):
    cfg = load(name)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for dataset in dataset_cfgs(cfg[loader]):
            assert dataset['type'] == DATASET_TYPES[name]
            assert DATASETS.get(dataset['type']).__module__.startswith(
                'mmrskd.datasets')
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator,
                                                 list) else [cfg.val_evaluator]
    assert {e['type'] for e in evaluators} == {'RSDetMetric'}
    box_type = 'hbox' if name in ('dior', 'nwpu_vhr10') else 'rbox'
    assert {e['box_type'] for e in evaluators} == {box_type}
    Evaluator(cfg.val_evaluator)
    # a missing data root fails at build time with the path in one line
    dataset = copy.deepcopy(dataset_cfgs(cfg.val_dataloader)[0])
    dataset['data_root'] = str(tmp_path / 'missing')
    with pytest.raises(ValueError, match=r'missing does not exist; check'):
        DATASETS.build(dataset)


@pytest.mark.parametrize('name', sorted(SYNTHETIC))
def test_synthetic_configs_build_and_load(name, synthetic):
    fmt = SYNTHETIC[name]
    root, records = synthetic(fmt)
    cfg = load(f'synthetic_{name}')
    assert cfg.data_root == f'data/synthetic/{fmt}/'
    if fmt != 'hrsc':
        assert cfg.metainfo['classes'] == default_classes(fmt)
    for loader in ('train_dataloader', 'val_dataloader'):
        for dataset_cfg in dataset_cfgs(cfg[loader]):
            dataset_cfg['data_root'] = str(root)
            dataset = DATASETS.build(dataset_cfg)
            assert len(dataset) > 0
            sample = dataset[0]
            info = dataset.get_data_info(0)
            gt = sample['data_samples'].gt_instances
            ignored = sample['data_samples'].ignored_instances
            assert len(gt) + len(ignored) == len(info['instances'])


def test_dota_val_pipeline_gives_le90_rboxes_of_the_drawn_objects(
        synthetic):
    root, records = synthetic('dota')
    checked = 0
    for split in ('train', 'val'):
        cfg = load('synthetic_dota').val_dataloader.dataset
        cfg.update(data_root=str(root), ann_file=f'{split}/labelTxt/',
                   serialize_data=False,
                   data_prefix=dict(img_path=f'{split}/images/'))
        dataset = DATASETS.build(cfg)
        expected = [r for r in records if r['split'] == split]
        for k, record in enumerate(expected):
            data = dataset[k]['data_samples']
            boxes = data.gt_instances.bboxes
            assert isinstance(boxes, RotatedBoxes)
            # the val pipeline resizes the image to 256 but keeps the boxes
            assert data.img_shape == (256, 256)
            easy = [i for i in record['instances'] if not i['difficult']]
            assert len(boxes) == len(easy)
            if not easy:
                continue
            got = le90(boxes.tensor)
            want = le90([i['rbox'] for i in easy])
            np.testing.assert_allclose(got[:, :4], want[:, :4], atol=0.15)
            elongated = want[:, 2] > 1.3 * want[:, 3]
            assert np.all(
                angle_gap(got[elongated, 4], want[elongated, 4]) < 0.02)
            checked += int(elongated.sum())
    assert checked >= 10


def test_angle_convention_on_a_hand_made_box(tmp_path):
    """A 40 x 20 box turned by +30 degrees, clockwise on screen: corners
    (100, 100) + R(30 deg) (+-20, +-10) computed by hand."""
    (tmp_path / 'labelTxt').mkdir()
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labelTxt' / 'P0001.txt').write_text(
        'imagesource:GoogleEarth\ngsd:0.5\n'
        '87.68 81.34 122.32 101.34 112.32 118.66 77.68 98.66 plane 0\n')
    cv2.imwrite(str(tmp_path / 'images' / 'P0001.png'),
                np.zeros((200, 200, 3), np.uint8))
    cfg = load('dota').val_dataloader.dataset
    cfg.update(data_root=str(tmp_path), ann_file='labelTxt/',
               serialize_data=False,
               data_prefix=dict(img_path='images/'))
    boxes = DATASETS.build(cfg)[0]['data_samples'].gt_instances.bboxes
    cx, cy, w, h, angle = le90(boxes.tensor)[0]
    np.testing.assert_allclose([cx, cy, w, h], [100, 100, 40, 20], atol=0.02)
    assert abs(angle - math.radians(30)) < 1e-3


def test_train_pipeline_scales_boxes(synthetic):
    root, records = synthetic('hrsc')
    cfg = load('synthetic_hrsc').train_dataloader.dataset
    cfg.update(data_root=str(root), serialize_data=False)
    dataset = DATASETS.build(cfg)
    record = next(r for r in records if r['img_path'] ==
                  dataset.get_data_info(0)['img_path'])
    boxes = dataset[0]['data_samples'].gt_instances.bboxes
    # Resize (320, 224) doubles the 160 x 112 image; flips keep the sizes
    want = le90([i['hrsc_rbox'] for i in record['instances']
                 if not i['difficult']])
    np.testing.assert_allclose(le90(boxes.tensor)[:, 2:4], 2 * want[:, 2:4],
                               atol=0.05)


def test_synthetic_dota_config_scores_perfect_predictions_1(
        synthetic, monkeypatch):
    """The demo's val dataset and evaluator fit together: ground truth fed
    back as predictions scores mAP 1."""
    import multiprocessing.dummy

    import torch
    from mmengine.structures import InstanceData
    from mmrotate.evaluation.functional import mean_ap

    # mmrotate computes AP in a 'spawn' pool whose workers import mmrotate
    # without mmrskd's compat layer when __main__ (here pytest) does not
    # import mmrskd; threads keep the test in this process.
    monkeypatch.setattr(mean_ap, 'get_context',
                        lambda method: multiprocessing.dummy)

    root, _ = synthetic('dota')
    cfg = load('synthetic_dota')
    assert cfg.val_evaluator == dict(type='mmrotate.DOTAMetric',
                                     metric='mAP')
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.update(data_root=str(root), ann_file='train/labelTxt/',
                       serialize_data=False,
                       data_prefix=dict(img_path='train/images/'))
    dataset = DATASETS.build(dataset_cfg)
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    for k in range(len(dataset)):
        sample = dataset[k]['data_samples']
        gt = sample.gt_instances
        sample.pred_instances = InstanceData(
            bboxes=gt.bboxes.tensor, labels=gt.labels,
            scores=torch.ones(len(gt)))
        evaluator.process(data_samples=[sample], data_batch={})
    metrics = evaluator.evaluate(len(dataset))
    assert metrics['dota/mAP'] == pytest.approx(1.0)
