"""HRSCDataset and parse_hrsc_xml."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmrskd.datasets import HRSCDataset, InvalidAnnotationError, parse_hrsc_xml
from mmrskd.datasets import utils as dataset_utils
from mmrskd.datasets.hrsc import HRSC_CLASSES
from mmrskd.utils import MMRSKDError

# HRSC2016 100000006 (1172 x 816) plus a second, difficult object
HRSC_XML = """<HRSC_Image>
  <Img_ID>100000006</Img_ID>
  <Img_FileFmt>bmp</Img_FileFmt>
  <Img_SizeWidth>1172</Img_SizeWidth>
  <Img_SizeHeight>816</Img_SizeHeight>
  <Img_SizeDepth>3</Img_SizeDepth>
  <HRSC_Objects>
    <HRSC_Object>
      <Object_ID>100000006</Object_ID>
      <Class_ID>100000013</Class_ID>
      <truncated>0</truncated>
      <difficult>0</difficult>
      <box_xmin>119</box_xmin><box_ymin>75</box_ymin>
      <box_xmax>587</box_xmax><box_ymax>789</box_ymax>
      <mbox_cx>341.2143</mbox_cx>
      <mbox_cy>443.3325</mbox_cy>
      <mbox_w>778.4297</mbox_w>
      <mbox_h>178.2595</mbox_h>
      <mbox_ang>-1.122944</mbox_ang>
      <header_x>143</header_x>
      <header_y>776</header_y>
    </HRSC_Object>
    <HRSC_Object>
      <Class_ID>100000002</Class_ID>
      <difficult>1</difficult>
      <mbox_cx>100</mbox_cx><mbox_cy>50</mbox_cy>
      <mbox_w>40</mbox_w><mbox_h>10</mbox_h>
      <mbox_ang>0</mbox_ang>
    </HRSC_Object>
  </HRSC_Objects>
</HRSC_Image>
"""
# corners (-w/2,-h/2), (w/2,-h/2), (w/2,h/2), (-w/2,h/2) rotated by
# -1.122944 rad (cos 0.433031, sin -0.901379) about (341.2143, 443.3325)
EXPECTED_QBOX = [92.333, 755.567, 429.417, 53.906, 590.096, 131.098,
                 253.012, 832.759]


def write_hrsc(root, xml=HRSC_XML, img_id='100000006'):
    for sub in ('AllImages', 'Annotations'):
        (root / 'FullDataSet' / sub).mkdir(parents=True, exist_ok=True)
    (root / 'FullDataSet' / 'Annotations' / f'{img_id}.xml').write_text(xml)
    cv2.imwrite(str(root / 'FullDataSet' / 'AllImages' / f'{img_id}.bmp'),
                np.zeros((51, 73, 3), np.uint8))
    (root / 'ImageSets').mkdir(exist_ok=True)
    (root / 'ImageSets' / 'test.txt').write_text(f'{img_id}\n')


def build(root, **kwargs):
    return HRSCDataset(data_root=str(root), ann_file='ImageSets/test.txt',
                       serialize_data=False,
                       **kwargs)


def test_class_ids():
    assert len(HRSC_CLASSES) == 31
    numbers = HRSCDataset.METAINFO['classes_id']
    assert '21' not in numbers and '23' not in numbers
    assert numbers[12] == '13' and HRSC_CLASSES[12] == 'Kuznetsov'
    assert numbers[-1] == '33' and HRSC_CLASSES[-1] == 'Invincible-class'


def test_parse(tmp_path):
    write_hrsc(tmp_path)
    ann = parse_hrsc_xml(
        str(tmp_path / 'FullDataSet' / 'Annotations' / '100000006.xml'))
    assert (ann['width'], ann['height']) == (1172, 816)
    np.testing.assert_allclose(
        ann['rboxes'][0], [341.2143, 443.3325, 778.4297, 178.2595, -1.122944],
        rtol=1e-6)
    np.testing.assert_allclose(ann['qboxes'][0], EXPECTED_QBOX, atol=2e-3)
    np.testing.assert_allclose(ann['qboxes'][1],
                               [80, 45, 120, 45, 120, 55, 80, 55], atol=1e-5)
    assert ann['class_ids'] == ['100000013', '100000002']
    assert ann['difficulties'].tolist() == [0, 1]


def test_single_class_and_classwise(tmp_path):
    write_hrsc(tmp_path)
    single = build(tmp_path)
    assert single.metainfo['classes'] == ('ship', )
    info = single.get_data_info(0)
    # height from Img_SizeHeight (mmrotate 1.x reads the width twice)
    assert (info['width'], info['height']) == (1172, 816)
    assert info['img_path'] == osp.join(str(tmp_path), 'FullDataSet',
                                        'AllImages', '100000006.bmp')
    assert [(i['bbox_label'], i['ignore_flag'])
            for i in info['instances']] == [(0, 0), (0, 1)]
    np.testing.assert_allclose(info['instances'][0]['bbox'], EXPECTED_QBOX,
                               atol=2e-3)
    classwise = build(tmp_path, classwise=True, diff_thr=1)
    assert len(classwise.metainfo['classes']) == 31
    instances = classwise.get_data_info(0)['instances']
    assert [(i['bbox_label'], i['ignore_flag'])
            for i in instances] == [(12, 0), (1, 0)]
    subset = build(tmp_path, classwise=True,
                   metainfo=dict(classes=('aircraft carrier', )))
    assert [i['bbox_label'] for i in subset.get_data_info(0)['instances']
            ] == [0]


def test_unknown_class_id(tmp_path, monkeypatch):
    write_hrsc(tmp_path, HRSC_XML.replace('100000002', '100000021'))
    xml = osp.join(str(tmp_path), 'FullDataSet', 'Annotations',
                   '100000006.xml')
    assert len(build(tmp_path).get_data_info(0)['instances']) == 2
    with pytest.raises(InvalidAnnotationError,
                       match=f'^{xml}:24: unknown Class_ID 100000021'):
        build(tmp_path, classwise=True)
    messages = []
    monkeypatch.setattr(dataset_utils, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    dataset = build(tmp_path, classwise=True, on_invalid='skip')
    assert len(dataset.get_data_info(0)['instances']) == 1
    assert messages[0].startswith(f'{xml}:24: unknown Class_ID')


@pytest.mark.parametrize('old, new, line, problem', [
    ('<mbox_h>10</mbox_h>', '<mbox_h>0</mbox_h>', 23, 'must be positive'),
    ('<mbox_ang>0</mbox_ang>', '', 23, 'has no <mbox_ang> value'),
    ('<mbox_cx>100</mbox_cx>', '<mbox_cx>1OO</mbox_cx>', 23,
     '<mbox_cx>1OO</mbox_cx> is not a finite number'),
    ('</HRSC_Objects>', '', 31, 'not well-formed XML'),
])
def test_invalid_annotation(tmp_path, old, new, line, problem):
    write_hrsc(tmp_path, HRSC_XML.replace(old, new))
    xml = osp.join(str(tmp_path), 'FullDataSet', 'Annotations',
                   '100000006.xml')
    with pytest.raises(InvalidAnnotationError) as err:
        build(tmp_path)
    assert str(err.value).startswith(f'{xml}:{line}: ')
    assert problem in str(err.value)


def test_size_from_image_and_missing_paths(tmp_path):
    write_hrsc(tmp_path, HRSC_XML.replace('1172', '').replace('816', ''))
    info = build(tmp_path).get_data_info(0)
    assert (info['width'], info['height']) == (73, 51)
    with pytest.raises(MMRSKDError, match='annotation directory .*/Anno '):
        build(tmp_path, ann_subdir='Anno')
    (tmp_path / 'FullDataSet' / 'AllImages' / '100000006.bmp').unlink()
    with pytest.raises(MMRSKDError, match='image of 100000006 .*bmp does'):
        build(tmp_path)


def test_synthetic_round_trip(synthetic):
    root, records = synthetic('hrsc')
    for split, classwise in (('trainval', False), ('test', True)):
        dataset = HRSCDataset(data_root=str(root), classwise=classwise,
                              serialize_data=False,
                              ann_file=f'ImageSets/{split}.txt')
        expected = [r for r in records
                    if (r['split'] == 'test') == (split == 'test')]
        assert len(dataset) == len(expected)
        for k, record in enumerate(expected):
            info = dataset.get_data_info(k)
            assert info['img_path'] == record['img_path']
            assert (info['width'], info['height']) == (160, 112)
            labels = [HRSC_CLASSES.index(i['name']) if classwise else 0
                      for i in record['instances']]
            assert [(i['bbox_label'], i['ignore_flag'])
                    for i in info['instances']] == [
                        (label, i['difficult'])
                        for label, i in zip(labels, record['instances'])]
            for got, want in zip(info['instances'], record['instances']):
                cx, cy, w, h, angle = want['hrsc_rbox']
                u = np.array([np.cos(angle), np.sin(angle)]) * w / 2
                v = np.array([-np.sin(angle), np.cos(angle)]) * h / 2
                corners = [(cx, cy) - u - v, (cx, cy) + u - v,
                           (cx, cy) + u + v, (cx, cy) - u + v]
                np.testing.assert_allclose(got['bbox'],
                                           np.ravel(corners), atol=1e-3)
