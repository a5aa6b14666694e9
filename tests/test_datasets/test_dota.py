"""DOTADataset and parse_dota_txt on hand-written and synthetic files."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmrskd.datasets import DOTADataset, InvalidAnnotationError, parse_dota_txt
from mmrskd.datasets import utils as dataset_utils
from mmrskd.datasets.synthetic import default_classes
from mmrskd.registry import DATASETS
from mmrskd.utils import MMRSKDError

# DOTA_devkit example P0706 (raw labelTxt with its two header lines)
RAW_P0706 = """imagesource:GoogleEarth
gsd:0.255589285596
1054 1028 1063 1011 1111 1040 1112 1062 ship 1
807 331 800 324 817 309 823 316 ship 0
"""
# an mmrotate split patch: no header; 2 marks an object cut by the border
PATCH = """359.0 663.0 369.0 497.0 543.0 509.0 531.0 677.0 plane 0
10.5 20.0 30.5 20.0 30.5 30.0 10.5 30.0 small-vehicle 2
"""


def write_dota(root, labels, sizes=None):
    """Write ``labels`` ({img_id: text}) and matching blank images."""
    (root / 'labelTxt').mkdir(parents=True, exist_ok=True)
    (root / 'images').mkdir(exist_ok=True)
    for img_id, text in labels.items():
        (root / 'labelTxt' / f'{img_id}.txt').write_text(text)
        width, height = (sizes or {}).get(img_id, (40, 30))
        cv2.imwrite(str(root / 'images' / f'{img_id}.png'),
                    np.zeros((height, width, 3), np.uint8))


def infos(dataset):
    return [dataset.get_data_info(k) for k in range(len(dataset))]


def build(root, **kwargs):
    kwargs.setdefault('ann_file', 'labelTxt/')
    # serialize_data=False: mmengine's serialisation runs gc.collect()
    return DOTADataset(data_root=str(root), serialize_data=False,
                       data_prefix=dict(img_path='images/'), **kwargs)


@pytest.fixture
def warnings_seen(monkeypatch):
    messages = []
    monkeypatch.setattr(dataset_utils, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    return messages


def test_parse_raw_file_with_headers(tmp_path):
    path = tmp_path / 'P0706.txt'
    path.write_text(RAW_P0706)
    polys, names, difficulties = parse_dota_txt(str(path))
    assert polys.dtype == np.float32 and polys.shape == (2, 8)
    np.testing.assert_array_equal(
        polys, [[1054, 1028, 1063, 1011, 1111, 1040, 1112, 1062],
                [807, 331, 800, 324, 817, 309, 823, 316]])
    assert names == ['ship', 'ship']
    np.testing.assert_array_equal(difficulties, [1, 0])


def test_parse_patch_null_gsd_and_missing_difficulty(tmp_path):
    path = tmp_path / 'a.txt'
    path.write_text('imagesource:GF-2\ngsd:null\n\n'
                    '1 2 3 4 5 6 7 8.5 harbor\n')
    polys, names, difficulties = parse_dota_txt(str(path))
    np.testing.assert_array_equal(polys, [[1, 2, 3, 4, 5, 6, 7, 8.5]])
    assert names == ['harbor'] and difficulties.tolist() == [0]
    path.write_text('')
    polys, names, difficulties = parse_dota_txt(str(path))
    assert polys.shape == (0, 8) and names == [] and len(difficulties) == 0


def test_dataset_raw_and_patch(tmp_path):
    write_dota(tmp_path, {'P0706': RAW_P0706, 'P2805__1024__0___0': PATCH},
               sizes={'P0706': (1200, 1100)})
    dataset = build(tmp_path)
    assert len(dataset) == 2
    raw, patch = dataset.get_data_info(0), dataset.get_data_info(1)
    assert raw['img_id'] == 'P0706'
    assert raw['img_path'] == osp.join(str(tmp_path), 'images', 'P0706.png')
    assert (raw['width'], raw['height']) == (1200, 1100)
    ship = DOTADataset.METAINFO['classes'].index('ship')
    assert ship == 6
    assert raw['instances'] == [
        dict(bbox=[1054.0, 1028.0, 1063.0, 1011.0, 1111.0, 1040.0, 1112.0,
                   1062.0], bbox_label=6, ignore_flag=0),
        dict(bbox=[807.0, 331.0, 800.0, 324.0, 817.0, 309.0, 823.0, 316.0],
             bbox_label=6, ignore_flag=0)
    ]
    assert [i['bbox_label'] for i in patch['instances']] == [0, 4]
    assert patch['instances'][1]['bbox'] == [10.5, 20, 30.5, 20, 30.5, 30,
                                             10.5, 30]
    # difficulty > diff_thr -> ignore_flag
    flags = {thr: [[i['ignore_flag'] for i in build(
        tmp_path, diff_thr=thr).get_data_info(k)['instances']]
        for k in (0, 1)] for thr in (0, 1, 100)}
    assert flags == {0: [[1, 0], [0, 1]], 1: [[0, 0], [0, 1]],
                     100: [[0, 0], [0, 0]]}


def test_class_subset_relabels_and_drops(tmp_path):
    write_dota(tmp_path, {'P2805__1024__0___0': PATCH, 'P0706': RAW_P0706})
    dataset = build(tmp_path, metainfo=dict(classes=('ship', 'plane')))
    assert [[i['bbox_label'] for i in dataset.get_data_info(k)['instances']]
            for k in (0, 1)] == [[0, 0], [1]]
    full = DOTADataset.METAINFO
    assert dataset.metainfo['palette'] == [
        full['palette'][full['classes'].index(c)] for c in ('ship', 'plane')
    ]
    with pytest.raises(MMRSKDError, match=r"\['car'\].*not classes of this"):
        build(tmp_path, metainfo=dict(classes=('ship', 'car')))


def test_empty_images_kept_unless_filtered(tmp_path):
    write_dota(tmp_path, {'P0706': RAW_P0706, 'P0001': 'imagesource:JL-1\n'
                          'gsd:0.7\n'})
    assert [len(d['instances']) for d in infos(build(tmp_path))] == [0, 2]
    filtered = build(tmp_path, filter_cfg=dict(filter_empty_gt=True))
    assert [d['img_id'] for d in infos(filtered)] == ['P0706']
    in_test_mode = build(tmp_path, filter_cfg=dict(filter_empty_gt=True),
                         test_mode=True)
    assert len(in_test_mode) == 2


def test_image_only_mode(tmp_path, warnings_seen):
    write_dota(tmp_path, {'P0002': PATCH, 'P0001': PATCH})
    for dataset in (build(tmp_path, ann_file='', test_mode=True),
                    build(tmp_path, ann_file='')):
        assert [d['img_id'] for d in infos(dataset)] == ['P0001', 'P0002']
        assert all(d['instances'] == [] and d['width'] == 40
                   for d in infos(dataset))
    (tmp_path / 'empty').mkdir()
    dataset = build(tmp_path, ann_file='empty', test_mode=True)
    assert len(dataset) == 2 and 'no .txt label files' in warnings_seen[0]
    with pytest.raises(MMRSKDError, match='no .txt label files in .*empty'):
        build(tmp_path, ann_file='empty')


@pytest.mark.parametrize('line, problem', [
    ('1 2 3 4 5 6 7 8 car 0', "unknown class 'car'"),
    ('1 2 3 4 5 6 plane 0', 'got 8 fields'),
    ('1 2 3 4 5 6 7 x plane 0', 'non-numeric coordinate'),
    ('1 2 3 4 5 6 7 nan plane 0', 'non-finite coordinate'),
    ('1 2 3 4 5 6 7 8 plane hard', "difficult flag 'hard'"),
    ('gsd:0.2', 'got 1 fields'),
])
def test_invalid_line_names_file_and_line(tmp_path, line, problem,
                                          warnings_seen):
    write_dota(tmp_path, {'P0003': RAW_P0706 + line + '\n'})
    label_file = osp.join(str(tmp_path), 'labelTxt', 'P0003.txt')
    with pytest.raises(InvalidAnnotationError) as err:
        build(tmp_path)
    message = str(err.value)
    assert message.startswith(f'{label_file}:5: ') and problem in message
    assert "on_invalid='skip'" in message and '\n' not in message
    dataset = build(tmp_path, on_invalid='skip')
    assert len(dataset.get_data_info(0)['instances']) == 2
    assert warnings_seen == [f'{message.split(" (fix")[0]}; skipped '
                             '(on_invalid=skip)']


def test_missing_paths(tmp_path):
    write_dota(tmp_path, {'P0706': RAW_P0706})
    with pytest.raises(MMRSKDError, match='data_root .*nowhere does not'):
        build(tmp_path / 'nowhere')
    with pytest.raises(MMRSKDError, match=r'ann_file .*labels/ does not'):
        build(tmp_path, ann_file='labels/')
    (tmp_path / 'images' / 'P0706.png').unlink()
    with pytest.raises(MMRSKDError, match=r'image .*P0706.png does not'):
        build(tmp_path)
    with pytest.raises(MMRSKDError, match="on_invalid='ignore'"):
        build(tmp_path, on_invalid='ignore')


def test_registry_builds_mmrskd_dataset(tmp_path):
    write_dota(tmp_path, {'P0706': RAW_P0706})
    dataset = DATASETS.build(
        dict(type='DOTADataset', data_root=str(tmp_path),
             ann_file='labelTxt/', data_prefix=dict(img_path='images/'),
             serialize_data=False))
    assert isinstance(dataset, DOTADataset)


def test_synthetic_round_trip(synthetic):
    root, records = synthetic('dota')
    classes = default_classes('dota')
    for split in ('train', 'val'):
        dataset = DOTADataset(
            data_root=str(root), ann_file=f'{split}/labelTxt/',
            data_prefix=dict(img_path=f'{split}/images/'),
            metainfo=dict(classes=classes), diff_thr=0, serialize_data=False)
        expected = [r for r in records if r['split'] == split]
        assert len(dataset) == len(expected)
        for k, record in enumerate(expected):
            info = dataset.get_data_info(k)
            assert info['img_path'] == record['img_path']
            assert (info['width'], info['height']) == (128, 128)
            assert [(i['bbox_label'], i['ignore_flag'])
                    for i in info['instances']] == [
                        (classes.index(i['name']), i['difficult'])
                        for i in record['instances']]
            for got, want in zip(info['instances'], record['instances']):
                np.testing.assert_allclose(got['bbox'], want['qbox'],
                                           rtol=0, atol=1e-4)
