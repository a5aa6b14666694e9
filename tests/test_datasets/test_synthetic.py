"""The synthetic generator: formats on disk, determinism, records."""
import hashlib
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from mmrskd.datasets import (DIORDataset, DOTADataset, HRSCDataset,
                             NWPUVHR10Dataset)
from mmrskd.datasets.synthetic import (FORMATS, default_classes, generate,
                                       resolve_classes)
from mmrskd.datasets.synthetic.painters import LOOKS, name_key
from mmrskd.utils import MMRSKDError


def tree_digest(root):
    """{relative path: sha1} of every file under ``root``."""
    digest = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digest[osp.relpath(path, root)] = hashlib.sha1(
                    f.read()).hexdigest()
    return digest


@pytest.mark.parametrize('fmt', FORMATS)
def test_same_seed_same_bytes_other_seed_differs(fmt, tmp_path):
    kwargs = dict(num_images=3, img_size=96)
    generate(fmt, str(tmp_path / 'a'), seed=1, **kwargs)
    generate(fmt, str(tmp_path / 'b'), seed=1, **kwargs)
    generate(fmt, str(tmp_path / 'c'), seed=2, **kwargs)
    first, again = tree_digest(tmp_path / 'a'), tree_digest(tmp_path / 'b')
    other = tree_digest(tmp_path / 'c')
    assert first and first == again
    images = [p for p in first.keys() & other.keys()
              if not p.endswith(('.txt', '.xml', '.json'))]
    assert images and all(first[p] != other[p] for p in images)


def test_dota_layout_headers_and_records(synthetic):
    root, records = synthetic('dota')
    assert [r['split'] for r in records] == ['train'] * 13 + ['val'] * 3
    header = re.compile(r'^imagesource:GoogleEarth\ngsd:\d+\.\d{12}\n')
    line = re.compile(r'^(\d+\.\d ){8}[a-z-]+ [01]$')
    for record in records:
        assert record['img_path'] == osp.join(
            root, record['split'], 'images', f"{record['img_id']}.png")
        text = open(record['ann_path']).read()
        assert header.match(text)
        object_lines = text.splitlines()[2:]
        assert len(object_lines) == len(record['instances'])
        for text_line, inst in zip(object_lines, record['instances']):
            assert line.match(text_line)
            values = text_line.split()
            assert [float(v) for v in values[:8]] == inst['qbox']
            assert values[8:] == [inst['name'], str(inst['difficult'])]
        image = cv2.imread(record['img_path'])
        assert image.shape == (128, 128, 3)
    # every 8th image is empty; some objects are difficult; default classes
    assert [r['img_id'] for r in records if not r['instances']] == [
        'P0007', 'P0015'
    ]
    instances = [i for r in records for i in r['instances']]
    assert {i['name'] for i in instances} == set(default_classes('dota'))
    assert 0 < sum(i['difficult'] for i in instances) < len(instances)


def test_dota_vertices_clockwise_and_match_the_drawn_box(synthetic):
    _, records = synthetic('dota')
    for inst in (i for r in records for i in r['instances']):
        quad = np.array(inst['qbox']).reshape(4, 2)
        x, y = quad[:, 0], quad[:, 1]
        # shoelace sum > 0 <=> clockwise on screen (y down)
        assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
        cx, cy, w, h, angle = inst['rbox']
        u = np.array([np.cos(angle), np.sin(angle)])
        v = np.array([-np.sin(angle), np.cos(angle)])
        expected = np.array([(cx, cy) + su * w / 2 * u + sv * h / 2 * v
                             for su, sv in ((-1, -1), (1, -1), (1, 1),
                                            (-1, 1))])
        assert np.abs(quad - expected).max() <= 0.05 + 1e-9
        # objects lie fully inside the image
        assert quad.min() >= 0 and quad.max() <= 127


def test_dior_layout(synthetic):
    root, records = synthetic('dior')
    splits = {s: open(osp.join(root, 'ImageSets', 'Main', f'{s}.txt')).read()
              .split() for s in ('train', 'val', 'test')}
    assert splits == {s: [r['img_id'] for r in records if r['split'] == s]
                      for s in splits}
    assert [len(splits[s]) for s in ('train', 'val', 'test')] == [8, 3, 5]
    assert records[0]['img_id'] == '00001'
    for record in records:
        folder = 'JPEGImages-test' if record['split'] == 'test' else \
            'JPEGImages-trainval'
        assert record['img_path'] == osp.join(root, folder,
                                              f"{record['img_id']}.jpg")
        assert osp.isfile(record['img_path'])
        for sub in ('Horizontal', 'Oriented'):
            assert osp.isfile(osp.join(root, 'Annotations',
                                       f'{sub} Bounding Boxes',
                                       f"{record['img_id']}.xml"))
    obb = open(osp.join(root, 'Annotations', 'Oriented Bounding Boxes',
                        '00001.xml')).read()
    assert '<type>robndbox</type>' in obb and '<angle>' in obb


def test_hrsc_layout_non_square_radians(synthetic):
    root, records = synthetic('hrsc')
    trainval = open(osp.join(root, 'ImageSets', 'trainval.txt')).read().split()
    test = open(osp.join(root, 'ImageSets', 'test.txt')).read().split()
    assert trainval + test == [r['img_id'] for r in records]
    assert records[0]['img_id'] == '100000001'
    record = next(r for r in records if r['instances'])
    xml = open(record['ann_path']).read()
    assert '<Img_SizeWidth>160</Img_SizeWidth>' in xml
    assert '<Img_SizeHeight>112</Img_SizeHeight>' in xml
    assert cv2.imread(record['img_path']).shape == (112, 160, 3)
    for inst in (i for r in records for i in r['instances']):
        assert -np.pi / 2 <= inst['hrsc_rbox'][4] < np.pi / 2
        assert re.fullmatch(r'1000000\d\d', inst['class_id'])
        # the header point is the middle of the bow edge
        cx, cy, w, _, angle = inst['rbox']
        bow = (cx + w / 2 * np.cos(angle), cy + w / 2 * np.sin(angle))
        assert np.abs(np.array(inst['header']) - bow).max() <= 0.5


def test_nwpu_layout_padding_and_split_file(synthetic):
    root, records = synthetic('nwpu')
    negatives = [r for r in records if r['img_id'].startswith('negative')]
    assert len(negatives) == 2 and all(not r['instances'] for r in negatives)
    assert osp.isfile(osp.join(root, 'negative image set', '001.jpg'))
    positive = next(r for r in records if r['instances'])
    lines = open(positive['ann_path']).read().splitlines()
    for text, inst in zip(lines, positive['instances']):
        x1, y1, x2, y2 = inst['hbox']
        assert text == (f'({x1:>3},{y1:>3}),({x2:>3},{y2:>3}),'
                        f"{inst['class_number']} ")
    split = json.load(open(osp.join(root, 'nwpu_vhr10_split.json')))
    for record in records:
        image_set, img_id = record['img_id'].split('_')
        assert img_id in split[record['split']][image_set]


@pytest.mark.parametrize('dataset', [DOTADataset, DIORDataset, HRSCDataset,
                                     NWPUVHR10Dataset])
def test_every_real_class_can_be_drawn(dataset):
    missing = [c for c in dataset.METAINFO['classes']
               if name_key(c) not in LOOKS]
    assert not missing


def test_all_classes_render_in_one_dataset(tmp_path):
    classes = DIORDataset.METAINFO['classes']
    records = generate('dior', str(tmp_path), 6, seed=3, img_size=320,
                       classes=','.join(classes))
    names = {i['name'] for r in records for i in r['instances']}
    assert names <= set(classes) and len(names) >= 8
    # 'all' is the whole vocabulary: the same images
    again = generate('dior', str(tmp_path / 'all'), 6, seed=3, img_size=320,
                     classes='all')
    assert [r['instances'] for r in again] == [
        r['instances'] for r in records]


def test_resolve_classes():
    assert resolve_classes('dior', 'all') == DIORDataset.METAINFO['classes']
    assert resolve_classes('dior') == default_classes('dior')
    assert resolve_classes('dota', 'ship, plane') == ('ship', 'plane')
    with pytest.raises(MMRSKDError, match="not dota class names"):
        resolve_classes('dota', 'ship,car')


def test_bad_arguments(tmp_path):
    with pytest.raises(MMRSKDError, match='not dota class names'):
        generate('dota', str(tmp_path / 'x'), 2, classes=['plane', 'car'])
    with pytest.raises(MMRSKDError, match='unknown synthetic format'):
        generate('coco', str(tmp_path / 'x'), 2)
    generate('dota', str(tmp_path / 'y'), 2, img_size=96)
    with pytest.raises(MMRSKDError, match='--overwrite'):
        generate('dota', str(tmp_path / 'y'), 2, img_size=96)
    generate('dota', str(tmp_path / 'y'), 1, img_size=96, overwrite=True)
    assert sorted(os.listdir(tmp_path / 'y' / 'train' / 'labelTxt')) == [
        'P0000.txt'
    ]


def test_split_sizes_replace_the_fractions(tmp_path):
    records = generate('dior', str(tmp_path / 'dior'), 7, img_size=96,
                       split_sizes=dict(train=2, val=4, test=1))
    assert [r['split'] for r in records] == ['train'] * 2 + ['val'] * 4 + [
        'test']
    val = open(tmp_path / 'dior' / 'ImageSets' / 'Main' / 'val.txt').read()
    assert val.split() == [r['img_id'] for r in records[2:6]]
    with pytest.raises(MMRSKDError, match='add up to 5, not num_images=6'):
        generate('dota', str(tmp_path / 'a'), 6, split_sizes=dict(train=2,
                                                                 val=3))
    with pytest.raises(MMRSKDError, match=r"splits \['train', 'val'\]"):
        generate('dota', str(tmp_path / 'b'), 5, split_sizes=dict(train=5))
    with pytest.raises(MMRSKDError,
                       match=r"splits \['train', 'val', 'test'\]"):
        generate('nwpu', str(tmp_path / 'c'), 2, split_sizes=dict(train=2))


def test_nwpu_split_sizes_are_exact_and_share_out_the_positives(tmp_path):
    records = generate('nwpu', str(tmp_path / 'nwpu'), 20, img_size=96,
                       split_sizes=dict(train=6, val=12, test=2))
    positives = sum(r['img_id'].startswith('positive') for r in records)
    counts = {name: [0, 0] for name in ('train', 'val', 'test')}
    for r in records:
        counts[r['split']][r['img_id'].startswith('negative')] += 1
    assert {k: sum(v) for k, v in counts.items()} == dict(train=6, val=12,
                                                          test=2)
    # positives by largest remainder of 6p/20, 12p/20, 2p/20
    quotas = [n * positives / 20 for n in (6, 12, 2)]
    shares = [int(q) for q in quotas]
    for k in sorted(range(3), key=lambda k: shares[k] - quotas[k])[
            :positives - sum(shares)]:
        shares[k] += 1
    assert [counts[s][0] for s in ('train', 'val', 'test')] == shares
    split = json.load(open(tmp_path / 'nwpu' / 'nwpu_vhr10_split.json'))
    assert sum(len(split['val'][s]) for s in split['val']) == 12


def test_cli(tmp_path, capsys):
    from importlib.util import module_from_spec, spec_from_file_location
    path = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'misc',
                    'make_synthetic_data.py')
    spec = spec_from_file_location('make_synthetic_data', path)
    cli = module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(['--format', 'nwpu', '--out', str(tmp_path), '--num-images',
              '3', '--img-size', '96', '--classes', 'ship,vehicle'])
    assert 'wrote 3 images' in capsys.readouterr().out
    assert osp.isfile(tmp_path / 'nwpu_vhr10_split.json')
    with pytest.raises(SystemExit, match='--overwrite'):
        cli.main(['--format', 'nwpu', '--out', str(tmp_path)])
    cli.main(['--format', 'dota', '--out', str(tmp_path / 'dota'),
              '--num-images', '3', '--img-size', '96', '--split-sizes',
              'train=1,val=2'])
    assert len(os.listdir(tmp_path / 'dota' / 'val' / 'images')) == 2
    with pytest.raises(SystemExit):
        cli.parse_args(['--format', 'dota', '--split-sizes', 'train:1'])
    assert "'train:1': expected SPLIT=N" in capsys.readouterr().err
