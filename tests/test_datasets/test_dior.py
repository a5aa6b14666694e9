"""DIORDataset, DIORRDataset and parse_dior_xml."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmrskd.datasets import (DIORDataset, DIORRDataset,
                             InvalidAnnotationError, parse_dior_xml)
from mmrskd.datasets import utils as dataset_utils
from mmrskd.datasets.synthetic import default_classes
from mmrskd.utils import MMRSKDError

HBB_XML = """<annotation>
    <filename>00001.jpg</filename>
    <size><width>800</width><height>600</height><depth>3</depth></size>
    <object>
        <name>golffield</name><pose>Unspecified</pose>
        <truncated>0</truncated><difficult>0</difficult>
        <bndbox>
            <xmin>133</xmin><ymin>237</ymin><xmax>684</xmax><ymax>572</ymax>
        </bndbox>
    </object>
    <object>
        <name>Expressway-Service-area</name><difficult>0</difficult>
        <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>90</ymax>
        </bndbox>
    </object>
    <object>
        <name>vehicle</name><difficult>1</difficult>
        <bndbox><xmin>5.5</xmin><ymin>6</ymin><xmax>15.5</xmax><ymax>11</ymax>
        </bndbox>
    </object>
</annotation>
"""
OBB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<annotation>
    <filename>00001.jpg</filename>
    <size><width>800</width><height>600</height><depth>3</depth></size>
    <object>
        <type>robndbox</type>
        <name>golffield</name><difficult>0</difficult>
        <robndbox>
            <x_left_top>133</x_left_top><y_left_top>237</y_left_top>
            <x_right_top>684</x_right_top><y_right_top>237</y_right_top>
            <x_right_bottom>684</x_right_bottom>
            <y_right_bottom>572</y_right_bottom>
            <x_left_bottom>133</x_left_bottom><y_left_bottom>572</y_left_bottom>
        </robndbox>
        <angle>0</angle>
    </object>
    <object>
        <type>robndbox</type>
        <name>expressway-service-area</name><difficult>0</difficult>
        <robndbox>
            <x_left_top>60</x_left_top><y_left_top>10</y_left_top>
            <x_right_top>110</x_right_top><y_right_top>60</y_right_top>
            <x_right_bottom>60</x_right_bottom>
            <y_right_bottom>110</y_right_bottom>
            <x_left_bottom>10</x_left_bottom><y_left_bottom>60</y_left_bottom>
        </robndbox>
        <angle>45</angle>
    </object>
</annotation>
"""


def write_dior(root, hbb=HBB_XML, obb=OBB_XML, img_id='00001'):
    for sub, text in (('Horizontal', hbb), ('Oriented', obb)):
        folder = root / 'Annotations' / f'{sub} Bounding Boxes'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'{img_id}.xml').write_text(text)
    (root / 'JPEGImages-trainval').mkdir(exist_ok=True)
    cv2.imwrite(str(root / 'JPEGImages-trainval' / f'{img_id}.jpg'),
                np.zeros((60, 80, 3), np.uint8))
    (root / 'ImageSets' / 'Main').mkdir(parents=True, exist_ok=True)
    (root / 'ImageSets' / 'Main' / 'train.txt').write_text(f'{img_id}\n\n')


def build(root, dataset=DIORDataset, **kwargs):
    kwargs.setdefault('ann_file', 'ImageSets/Main/train.txt')
    return dataset(data_root=str(root), serialize_data=False,
                   data_prefix=dict(img_path='JPEGImages-trainval'), **kwargs)


def test_dior_class_order():
    classes = DIORDataset.METAINFO['classes']
    assert len(classes) == 20 and classes[6] == 'dam'
    assert classes[7:9] == ('Expressway-Service-area',
                            'Expressway-toll-station')
    assert DIORRDataset.METAINFO['classes'] == classes


def test_parse_hbb_and_obb(tmp_path):
    write_dior(tmp_path)
    folder = tmp_path / 'Annotations'
    hbb = parse_dior_xml(
        str(folder / 'Horizontal Bounding Boxes' / '00001.xml'), 'hbox',
        DIORDataset.METAINFO['classes'])
    assert (hbb['width'], hbb['height']) == (800, 600)
    # as written: no VOC-style -1 shift
    np.testing.assert_array_equal(
        hbb['boxes'], [[133, 237, 684, 572], [10, 20, 110, 90],
                       [5.5, 6, 15.5, 11]])
    assert hbb['names'] == ['golffield', 'Expressway-Service-area', 'vehicle']
    assert hbb['difficulties'].tolist() == [0, 0, 1]
    obb = parse_dior_xml(
        str(folder / 'Oriented Bounding Boxes' / '00001.xml'), 'qbox',
        DIORDataset.METAINFO['classes'])
    np.testing.assert_array_equal(
        obb['boxes'], [[133, 237, 684, 237, 684, 572, 133, 572],
                       [60, 10, 110, 60, 60, 110, 10, 60]])
    # lower-case spelling maps to DIOR's own name
    assert obb['names'] == ['golffield', 'Expressway-Service-area']


def test_datasets(tmp_path):
    write_dior(tmp_path)
    info = build(tmp_path).get_data_info(0)
    assert info['img_path'] == osp.join(str(tmp_path), 'JPEGImages-trainval',
                                        '00001.jpg')
    assert (info['img_id'], info['width'], info['height']) == ('00001', 800,
                                                               600)
    assert info['instances'] == [
        dict(bbox=[133.0, 237.0, 684.0, 572.0], bbox_label=9, ignore_flag=0),
        dict(bbox=[10.0, 20.0, 110.0, 90.0], bbox_label=7, ignore_flag=0),
        dict(bbox=[5.5, 6.0, 15.5, 11.0], bbox_label=18, ignore_flag=1),
    ]
    keep_difficult = build(tmp_path, diff_thr=1).get_data_info(0)
    assert [i['ignore_flag'] for i in keep_difficult['instances']] == [0] * 3
    rotated = build(tmp_path, DIORRDataset).get_data_info(0)
    assert rotated['instances'] == [
        dict(bbox=[133.0, 237.0, 684.0, 237.0, 684.0, 572.0, 133.0, 572.0],
             bbox_label=9, ignore_flag=0),
        dict(bbox=[60.0, 10.0, 110.0, 60.0, 60.0, 110.0, 10.0, 60.0],
             bbox_label=7, ignore_flag=0),
    ]


def test_size_from_image_when_xml_has_none(tmp_path):
    write_dior(tmp_path, hbb=HBB_XML.replace(
        '<size><width>800</width><height>600</height><depth>3</depth></size>',
        ''))
    info = build(tmp_path).get_data_info(0)
    assert (info['width'], info['height']) == (80, 60)


@pytest.mark.parametrize('old, new, line, problem', [
    ('<xmax>684</xmax>', '', 7, '<bndbox> has no <xmax> value'),
    ('<name>vehicle</name>', '<name>car</name>', 17, "unknown class 'car'"),
    ('<xmin>10</xmin>', '<xmin>200</xmin>', 13, 'xmax <= xmin'),
    ('<ymin>237</ymin>', '<ymin>2x7</ymin>', 7, '<ymin>2x7</ymin> is not a'),
    ('<difficult>1</difficult>', '<difficult>?</difficult>', 16,
     '<difficult>?</difficult>'),
])
def test_invalid_object(tmp_path, old, new, line, problem, monkeypatch):
    assert old in HBB_XML
    write_dior(tmp_path, hbb=HBB_XML.replace(old, new))
    xml = osp.join(str(tmp_path), 'Annotations', 'Horizontal Bounding Boxes',
                   '00001.xml')
    with pytest.raises(InvalidAnnotationError) as err:
        build(tmp_path)
    assert str(err.value).startswith(f'{xml}:{line}: ')
    assert problem in str(err.value)
    messages = []
    monkeypatch.setattr(dataset_utils, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    assert len(build(tmp_path, on_invalid='skip').get_data_info(0)[
        'instances']) == 2
    assert len(messages) == 1 and messages[0].startswith(f'{xml}:{line}: ')


def test_bad_xml_file(tmp_path, monkeypatch):
    write_dior(tmp_path, obb=OBB_XML.replace('</robndbox>', '', 1))
    (tmp_path / 'JPEGImages-trainval' / '00002.jpg').write_bytes(
        (tmp_path / 'JPEGImages-trainval' / '00001.jpg').read_bytes())
    write_dior(tmp_path, img_id='00002')
    (tmp_path / 'ImageSets' / 'Main' / 'train.txt').write_text('00001\n00002')
    xml = osp.join(str(tmp_path), 'Annotations', 'Oriented Bounding Boxes',
                   '00001.xml')
    with pytest.raises(InvalidAnnotationError,
                       match=f'^{xml}:16: not well-formed XML'):
        build(tmp_path, DIORRDataset)
    messages = []
    monkeypatch.setattr(dataset_utils, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    dataset = build(tmp_path, DIORRDataset, on_invalid='skip')
    assert [dataset.get_data_info(0)['img_id']] == ['00002'] == [
        d['img_id'] for d in (dataset.get_data_info(k)
                              for k in range(len(dataset)))]
    assert 'skipped image 00001' in messages[0]


def test_missing_paths(tmp_path):
    write_dior(tmp_path)
    with pytest.raises(MMRSKDError, match='split file.*test.txt does not'):
        build(tmp_path, ann_file='ImageSets/Main/test.txt')
    with pytest.raises(MMRSKDError, match='ann_subdir .*Boxes/ does not'):
        build(tmp_path, ann_subdir='Annotations/Boxes/')
    (tmp_path / 'ImageSets' / 'Main' / 'train.txt').write_text('00009\n')
    with pytest.raises(MMRSKDError, match='annotation of 00009 .*00009.xml'):
        build(tmp_path)
    (tmp_path / 'JPEGImages-trainval' / '00001.jpg').unlink()
    (tmp_path / 'ImageSets' / 'Main' / 'train.txt').write_text('00001\n')
    with pytest.raises(MMRSKDError, match='image of 00001 .*00001.jpg does'):
        build(tmp_path)


@pytest.mark.parametrize('dataset, box_key', [(DIORDataset, 'hbox'),
                                              (DIORRDataset, 'qbox')])
def test_synthetic_round_trip(synthetic, dataset, box_key):
    root, records = synthetic('dior')
    classes = DIORDataset.METAINFO['classes']
    assert set(default_classes('dior')) <= set(classes)
    for split in ('train', 'val', 'test'):
        folder = 'JPEGImages-test' if split == 'test' else \
            'JPEGImages-trainval'
        built = dataset(data_root=str(root), serialize_data=False,
                        ann_file=f'ImageSets/Main/{split}.txt',
                        data_prefix=dict(img_path=folder))
        expected = [r for r in records if r['split'] == split]
        assert len(built) == len(expected)
        for k, record in enumerate(expected):
            info = built.get_data_info(k)
            assert info['img_path'] == record['img_path']
            assert (info['width'], info['height']) == (128, 128)
            assert [(i['bbox'], i['bbox_label'], i['ignore_flag'])
                    for i in info['instances']] == [
                        (i[box_key], classes.index(i['name']), i['difficult'])
                        for i in record['instances']]
