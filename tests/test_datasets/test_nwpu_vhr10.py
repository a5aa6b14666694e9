"""NWPUVHR10Dataset, parse_nwpu_txt and the shipped split."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmrskd.datasets import (InvalidAnnotationError, NWPUVHR10Dataset,
                             make_nwpu_split, parse_nwpu_txt)
from mmrskd.datasets import utils as dataset_utils
from mmrskd.datasets.nwpu_vhr10 import NWPU_CLASSES, SHIPPED_SPLIT_FILE
from mmrskd.utils import MMRSKDError

# ground truth/004.txt of the real dataset, with Windows line ends
GT_004 = '(227,106),(268,155),1 \r\n( 68,316),(170,411),1 \r\n'
GT_005 = '(  5, 10),( 25, 40),10 \n(1000,700),(1010.5,720),3\n\n'


def write_nwpu(root, ground_truth=None, negatives=('001', ),
               split=None):
    ground_truth = ground_truth or {'004': GT_004, '005': GT_005}
    for folder in ('positive image set', 'negative image set',
                   'ground truth'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for img_id, text in ground_truth.items():
        (root / 'ground truth' / f'{img_id}.txt').write_bytes(text.encode())
        cv2.imwrite(str(root / 'positive image set' / f'{img_id}.jpg'),
                    np.zeros((30, 50, 3), np.uint8))
    for img_id in negatives:
        cv2.imwrite(str(root / 'negative image set' / f'{img_id}.jpg'),
                    np.zeros((20, 10, 3), np.uint8))
    split = split or {'train': {'positive': sorted(ground_truth),
                                'negative': list(negatives)}}
    (root / 'split.json').write_text(json.dumps(split))


def build(root, **kwargs):
    kwargs.setdefault('ann_file', 'split.json')
    return NWPUVHR10Dataset(data_root=str(root), serialize_data=False,
                            **kwargs)


def infos(dataset):
    return [dataset.get_data_info(k) for k in range(len(dataset))]


def test_parse_padded_lines(tmp_path):
    path = tmp_path / '004.txt'
    path.write_bytes(GT_004.encode())
    boxes, numbers = parse_nwpu_txt(str(path))
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[227, 106, 268, 155],
                                          [68, 316, 170, 411]])
    assert numbers.tolist() == [1, 1]
    path.write_text(GT_005)
    boxes, numbers = parse_nwpu_txt(str(path))
    np.testing.assert_array_equal(boxes, [[5, 10, 25, 40],
                                          [1000, 700, 1010.5, 720]])
    assert numbers.tolist() == [10, 3]


def test_dataset_with_negatives(tmp_path):
    write_nwpu(tmp_path)
    data = infos(build(tmp_path))
    assert [d['img_id'] for d in data] == ['positive_004', 'positive_005',
                                           'negative_001']
    assert data[0]['img_path'] == osp.join(str(tmp_path),
                                           'positive image set', '004.jpg')
    assert data[2]['img_path'] == osp.join(str(tmp_path),
                                           'negative image set', '001.jpg')
    assert [(d['width'], d['height']) for d in data] == [(50, 30), (50, 30),
                                                         (10, 20)]
    assert data[1]['instances'] == [
        dict(bbox=[5.0, 10.0, 25.0, 40.0], bbox_label=9, ignore_flag=0),
        dict(bbox=[1000.0, 700.0, 1010.5, 720.0], bbox_label=2,
             ignore_flag=0),
    ]
    assert data[2]['instances'] == []
    filtered = build(tmp_path, filter_cfg=dict(filter_empty_gt=True))
    assert [d['img_id'] for d in infos(filtered)] == ['positive_004',
                                                      'positive_005']
    subset = build(tmp_path, metainfo=dict(classes=('vehicle', 'airplane')))
    assert [[i['bbox_label'] for i in d['instances']]
            for d in infos(subset)] == [[1, 1], [0], []]


@pytest.mark.parametrize('line, problem', [
    ('(1,2),(3,4)', 'expected "(x1,y1),(x2,y2),class"'),
    ('(1,2),(3,4),11', 'unknown class number 11'),
    ('(1,2),(3),5', 'expected "(x1,y1),(x2,y2),class"'),
    ('(30,2),(3,40),5', 'the second corner must be below and right'),
])
def test_invalid_line(tmp_path, line, problem, monkeypatch):
    write_nwpu(tmp_path, {'004': GT_004 + line + '\n'})
    txt = osp.join(str(tmp_path), 'ground truth', '004.txt')
    with pytest.raises(InvalidAnnotationError) as err:
        build(tmp_path)
    assert str(err.value).startswith(f'{txt}:3: ')
    assert problem in str(err.value)
    messages = []
    monkeypatch.setattr(dataset_utils, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    assert len(infos(build(tmp_path, on_invalid='skip'))[0]['instances']) \
        == 2
    assert messages[0].startswith(f'{txt}:3: {problem}')


def test_bad_split_and_missing_files(tmp_path):
    write_nwpu(tmp_path)
    with pytest.raises(MMRSKDError, match='no "val" entry'):
        build(tmp_path, split='val')
    with pytest.raises(MMRSKDError, match="split='dev'"):
        build(tmp_path, split='dev')
    (tmp_path / 'bad.json').write_text('{"train": \n [1, }')
    with pytest.raises(MMRSKDError, match=r'bad.json:2: invalid JSON'):
        build(tmp_path, ann_file='bad.json')
    (tmp_path / 'ground truth' / '005.txt').unlink()
    with pytest.raises(MMRSKDError, match='ground truth .*005.txt does not'):
        build(tmp_path)
    (tmp_path / 'negative image set' / '001.jpg').unlink()
    write_nwpu(tmp_path, {'004': GT_004}, negatives=())
    (tmp_path / 'split.json').write_text(json.dumps(
        {'train': {'positive': ['004'], 'negative': ['001']}}))
    with pytest.raises(MMRSKDError, match='image .*negative image set/001'):
        build(tmp_path)


def test_shipped_split_is_reproducible_and_complete():
    with open(SHIPPED_SPLIT_FILE) as f:
        shipped = json.load(f)
    positives = [f'{i:03d}' for i in range(1, 651)]
    negatives = [f'{i:03d}' for i in range(1, 151)]
    remade = make_nwpu_split(positives, negatives)
    assert {k: shipped[k] for k in remade} == remade
    for image_set, ids, counts in (('positive', positives, (390, 130, 130)),
                                   ('negative', negatives, (90, 30, 30))):
        parts = [shipped[s][image_set] for s in ('train', 'val', 'test')]
        assert tuple(len(p) for p in parts) == counts
        assert sorted(sum(parts, [])) == ids
    # the split depends on the ids only, not on their order or on RNG state
    assert make_nwpu_split(positives[::-1], negatives[::-1]) == remade


def test_split_by_sizes_keeps_the_hash_order_and_shares_out_positives():
    positives = [f'{i:03d}' for i in range(1, 11)]
    negatives = [f'{i:03d}' for i in range(1, 4)]
    # 10 positives over sizes (3, 8, 2) of 13: quotas 2.31, 6.15, 1.54, so
    # floors (2, 6, 1) and the largest remainder (test) gets the last one
    split = make_nwpu_split(positives, negatives, sizes=(3, 8, 2))
    assert [len(split[s]['positive']) for s in ('train', 'val', 'test')] \
        == [2, 6, 2]
    assert [len(split[s]['negative']) for s in ('train', 'val', 'test')] \
        == [1, 2, 0]
    # the same hash order as the ratio split: train is its prefix
    by_ratio = make_nwpu_split(positives, negatives, ratios=(0.2, 0.6, 0.2))
    assert split['train']['positive'] == by_ratio['train']['positive']
    with pytest.raises(MMRSKDError, match=r'sizes=\(3, 8, 1\): .* 13 images'):
        make_nwpu_split(positives, negatives, sizes=(3, 8, 1))


def test_default_ann_file_is_the_shipped_split(tmp_path):
    write_nwpu(tmp_path, {'002': GT_004}, negatives=())
    # the shipped split's train positives start 002, 005: 002 loads, 005 is
    # not in this tiny tree
    with pytest.raises(MMRSKDError,
                       match='image .*positive image set/005.jpg does not'):
        build(tmp_path, ann_file='')


def test_synthetic_round_trip(synthetic):
    root, records = synthetic('nwpu')
    for split in ('train', 'val', 'test'):
        dataset = NWPUVHR10Dataset(data_root=str(root), split=split,
                                   serialize_data=False,
                                   ann_file='nwpu_vhr10_split.json')
        got = {d['img_id']: d for d in infos(dataset)}
        expected = {r['img_id']: r for r in records if r['split'] == split}
        assert got.keys() == expected.keys() and got
        for img_id, record in expected.items():
            info = got[img_id]
            assert info['img_path'] == record['img_path']
            assert (info['width'], info['height']) == (128, 102)
            assert [(i['bbox'], i['bbox_label']) for i in info['instances']
                    ] == [(i['hbox'], NWPU_CLASSES.index(i['name']))
                          for i in record['instances']]
