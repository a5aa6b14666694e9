"""``RSDetMetric``: the process/evaluate contract, merging, result files."""
import os.path as osp
import zipfile

import numpy as np
import pytest
import rsdet_reference as ref
import torch

import mmrskd  # noqa: F401  (compat layer before mmrotate)
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes, rbox2qbox
from test_rs_mean_ap import NUM_CLASSES, random_case

from mmrskd.evaluation import COCO_IOU_THRS, RSDetMetric
from mmrskd.registry import METRICS
from mmrskd.utils import MMRSKDError

CLASSES = ('plane', 'ship', 'storage-tank', 'harbor')


def _instances(bboxes, labels, box_cls):
    inst = InstanceData()
    inst.bboxes = box_cls(torch.as_tensor(bboxes, dtype=torch.float32))
    inst.labels = torch.as_tensor(labels, dtype=torch.long)
    return inst


def _samples(dets, gts, det_cls=RotatedBoxes, gt_cls=RotatedBoxes,
             names=None):
    samples = []
    for i, (det, gt) in enumerate(zip(dets, gts)):
        sample = DetDataSample(metainfo=dict(
            img_id=names[i] if names else f'img{i}',
            img_path=f'/data/img{i}.png'))
        pred = _instances(det['bboxes'], det['labels'], det_cls)
        pred.scores = torch.as_tensor(det['scores'], dtype=torch.float32)
        sample.pred_instances = pred
        ign = gt['ignore_flags']
        sample.gt_instances = _instances(gt['bboxes'][~ign],
                                         gt['labels'][~ign], gt_cls)
        sample.ignored_instances = _instances(gt['bboxes'][ign],
                                              gt['labels'][ign], gt_cls)
        samples.append(sample)
    return samples


def _evaluate(metric, samples, batch_size=3):
    metric.dataset_meta = dict(classes=CLASSES)
    for start in range(0, len(samples), batch_size):
        batch = [s.to_dict() for s in samples[start:start + batch_size]]
        metric.process({}, batch)
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('eval_mode', ['11points', 'area'])
def test_voc_rbox_matches_reference(eval_mode):
    dets, gts = random_case('rbox', seed=7)
    metric = METRICS.build(
        dict(type='RSDetMetric', box_type='rbox', iou_thrs=[0.5, 0.75],
             eval_mode=eval_mode))
    result = _evaluate(metric, _samples(dets, gts))
    map50, _ = ref.voc_map(dets, gts, NUM_CLASSES, 0.5,
                           eval_mode == '11points')
    map75, _ = ref.voc_map(dets, gts, NUM_CLASSES, 0.75,
                           eval_mode == '11points')
    assert set(result) == {'rsdet/mAP', 'rsdet/mAP50', 'rsdet/mAP75'}
    assert result['rsdet/mAP50'] == pytest.approx(map50, abs=1e-4)
    assert result['rsdet/mAP75'] == pytest.approx(map75, abs=1e-4)
    assert result['rsdet/mAP'] == pytest.approx((map50 + map75) / 2,
                                                abs=1e-4)


def test_coco_with_qbox_gt_and_rbox_predictions():
    # rbox predictions are turned into qboxes exactly (rbox2qbox)
    dets, gts = random_case('rbox', seed=8)
    qdets = [
        dict(det, bboxes=rbox2qbox(torch.as_tensor(det['bboxes'])).numpy())
        for det in dets
    ]
    qgts = [
        dict(gt, bboxes=rbox2qbox(torch.as_tensor(gt['bboxes'])).numpy())
        for gt in gts
    ]
    metric = RSDetMetric(box_type='qbox', iou_thrs='coco')
    result = _evaluate(metric, _samples(dets, qgts, gt_cls=QuadriBoxes))
    expected, aps = ref.coco_map(qdets, qgts, NUM_CLASSES, COCO_IOU_THRS)
    assert list(result) == ['rsdet/mAP', 'rsdet/mAP50', 'rsdet/mAP75']
    assert result['rsdet/mAP'] == pytest.approx(expected, abs=1e-4)
    valid = ~np.isnan(aps[:, 0])
    assert result['rsdet/mAP50'] == pytest.approx(aps[valid, 0].mean(),
                                                  abs=1e-4)
    assert result['rsdet/mAP75'] == pytest.approx(aps[valid, 5].mean(),
                                                  abs=1e-4)


def test_raw_instances_give_the_same_result():
    dets, gts = random_case('qbox', seed=9)
    samples = []
    for i, (det, gt) in enumerate(zip(dets, gts)):
        samples.append(
            dict(
                img_id=f'img{i}',
                instances=[
                    dict(bbox=b.tolist(), bbox_label=int(lab),
                         ignore_flag=int(ign))
                    for b, lab, ign in zip(gt['bboxes'], gt['labels'],
                                           gt['ignore_flags'])
                ],
                pred_instances=dict(
                    bboxes=torch.as_tensor(det['bboxes']),
                    scores=torch.as_tensor(det['scores']),
                    labels=torch.as_tensor(det['labels']))))
    metric = RSDetMetric(box_type='qbox', eval_mode='area')
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    expected, _ = ref.voc_map(dets, gts, NUM_CLASSES, 0.5, False)
    assert result['rsdet/mAP'] == pytest.approx(expected, abs=1e-4)


def test_format_only_writes_task1_files(tmp_path):
    prefix = str(tmp_path / 'submission')
    metric = RSDetMetric(box_type='rbox', format_only=True,
                         outfile_prefix=prefix)
    dets = [
        dict(bboxes=np.array([[10, 20, 8, 4, 0.], [50, 50, 10, 10, 0.]]),
             scores=np.array([0.9, 0.5]), labels=np.array([1, 3]))
    ]
    gts = [
        dict(bboxes=np.zeros((0, 5)), labels=np.zeros(0, int),
             ignore_flags=np.zeros(0, bool))
    ]
    assert _evaluate(metric, _samples(dets, gts, names=['P0003'])) == {}
    with open(osp.join(prefix, 'Task1_ship.txt')) as f:
        fields = f.read().split()
    assert fields[0] == 'P0003'
    assert float(fields[1]) == pytest.approx(0.9)
    # corners of cx=10, cy=20, w=8, h=4, angle 0
    np.testing.assert_allclose(
        [float(v) for v in fields[2:]], [14, 22, 14, 18, 6, 18, 6, 22])
    with zipfile.ZipFile(osp.join(prefix, 'submission.zip')) as archive:
        assert sorted(archive.namelist()) == sorted(
            f'Task1_{c}.txt' for c in CLASSES)
    with open(osp.join(prefix, 'Task1_plane.txt')) as f:
        assert f.read() == ''


def test_merge_patches_evaluates_full_images(tmp_path):
    ann_dir = tmp_path / 'labelTxt'
    ann_dir.mkdir()
    (ann_dir / 'P0001.txt').write_text(
        'imagesource:GoogleEarth\ngsd:0.5\n'
        '900 100 940 100 940 120 900 120 ship 0\n'  # in both patches
        '1500 300 1540 300 1540 330 1500 330 ship 0\n'  # right patch only
        '100 900 140 900 140 930 100 930 ship 1\n'  # difficult, missed
        '300 300 340 300 340 330 300 330 helicopter 0\n')  # not evaluated
    # patch 824 sees the first ship at x - 824; the copy must be removed
    # by NMS, otherwise it is an FP ranked above the second ship
    dets = [
        dict(bboxes=np.array([[900, 100, 940, 100, 940, 120, 900, 120.]]),
             scores=np.array([0.9]), labels=np.array([1])),
        dict(bboxes=np.array([[76, 100, 116, 100, 116, 120, 76, 120.],
                              [676, 300, 716, 300, 716, 330, 676, 330.]]),
             scores=np.array([0.8, 0.7]), labels=np.array([1, 1])),
    ]
    empty = dict(bboxes=np.zeros((0, 8)), labels=np.zeros(0, int),
                 ignore_flags=np.zeros(0, bool))
    samples = _samples(dets, [empty, empty], QuadriBoxes, QuadriBoxes,
                       names=['P0001__1024__0___0', 'P0001__1024__824___0'])
    metric = RSDetMetric(box_type='qbox', eval_mode='area',
                         merge_patches=True, merged_ann_dir=str(ann_dir),
                         outfile_prefix=str(tmp_path / 'out'))
    assert _evaluate(metric, samples)['rsdet/mAP'] == pytest.approx(1.0)
    with open(tmp_path / 'out' / 'Task1_ship.txt') as f:
        lines = f.read().splitlines()
    assert [line.split()[:2] for line in lines] == [['P0001', '0.900000'],
                                                   ['P0001', '0.700000']]
    assert [float(v) for v in lines[1].split()[2:]] == [
        1500, 300, 1540, 300, 1540, 330, 1500, 330
    ]

    # without NMS the duplicate is an FP: TP, FP, TP
    metric = RSDetMetric(box_type='qbox', eval_mode='area',
                         merge_patches=True, merged_ann_dir=str(ann_dir),
                         nms_iou_thr=1.0)
    assert _evaluate(metric, samples)['rsdet/mAP'] == pytest.approx(
        0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize('cfg, key', [
    (dict(box_type='obb'), 'box_type'),
    (dict(iou_thrs='voc'), 'iou_thrs'),
    (dict(iou_thrs=[0.5, 1.5]), 'iou_thrs'),
    (dict(eval_mode='11point'), 'eval_mode'),
    (dict(format_only=True), 'outfile_prefix'),
    (dict(merge_patches=True), 'merged_ann_dir'),
    (dict(merge_patches=True, merged_ann_dir='/no/such/dir'),
     'merged_ann_dir'),
    (dict(nms_iou_thr=2), 'nms_iou_thr'),
])
def test_bad_config_gives_one_line_error(cfg, key):
    with pytest.raises(MMRSKDError) as err:
        RSDetMetric(**cfg)
    assert key in str(err.value) and '\n' not in str(err.value)


def test_runtime_errors_are_one_line(tmp_path):
    dets, gts = random_case('rbox', seed=1, num_imgs=2)
    metric = RSDetMetric()
    metric.process({}, [s.to_dict() for s in _samples(dets, gts)])
    with pytest.raises(MMRSKDError, match='dataset_meta'):
        metric.evaluate(2)

    metric = RSDetMetric(merge_patches=True, merged_ann_dir=str(tmp_path))
    with pytest.raises(MMRSKDError, match='not a patch name'):
        _evaluate(metric, _samples(dets, gts))

    bad = _samples(dets, gts)[0].to_dict()
    bad['pred_instances']['bboxes'] = torch.zeros(2, 6)
    with pytest.raises(MMRSKDError, match=r'pred_instances.bboxes.*\(2, 6\)'):
        RSDetMetric().process({}, [bad])
