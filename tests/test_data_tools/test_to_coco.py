"""tools/dataset_converters/to_coco.py on a tiny hand-built dataset."""
import contextlib
import importlib.util
import io
import json
import os.path as osp

import pytest
from toy_rs_dataset import write_config

TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters',
    'to_coco.py')


def _tool():
    spec = importlib.util.spec_from_file_location('to_coco_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotated_dataset_to_coco(tmp_path):
    config = write_config(tmp_path, 'qbox', pipeline=[])
    out = str(tmp_path / 'toy.json')
    _tool().main([config, '--split', 'val', '--out', out])
    with open(out) as f:
        coco = json.load(f)
    assert coco['categories'] == [dict(id=1, name='plane'),
                                  dict(id=2, name='ship')]
    assert [(i['id'], i['file_name'], i['width'], i['height'])
            for i in coco['images']] == [(1, 'img0.png', 200, 160),
                                         (2, 'img1.png', 200, 160)]
    first, second, third = coco['annotations']
    assert first['bbox'] == [20, 30, 60, 30] and first['area'] == 1800
    assert first['segmentation'] == [[20, 30, 80, 30, 80, 60, 20, 60]]
    assert (first['category_id'], first['iscrowd']) == (1, 0)
    # the turned quadrilateral: enclosing box and shoelace area
    assert second['bbox'] == [90, 100, 50, 40]
    assert second['area'] == pytest.approx(1000)
    assert (second['category_id'], second['iscrowd']) == (2, 1)
    assert (third['image_id'], third['id']) == (2, 3)

    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO(out)
    assert api.getAnnIds(imgIds=[1]) == [1, 2]


def test_horizontal_dataset_has_no_segmentation(tmp_path):
    config = write_config(tmp_path, 'hbox', pipeline=[])
    out = str(tmp_path / 'toy.json')
    _tool().main([config, '--out', out])
    with open(out) as f:
        anns = json.load(f)['annotations']
    assert anns[1]['bbox'] == [90, 100, 50, 40] and anns[1]['area'] == 2000
    assert all('segmentation' not in ann for ann in anns)


def test_missing_dataloader_is_one_line(tmp_path, capsys):
    config = write_config(tmp_path, 'qbox', pipeline=[])
    with pytest.raises(SystemExit):
        _tool().main([config, '--split', 'test', '--out', 'x.json'])
    err = capsys.readouterr().err.strip()
    assert 'test_dataloader.dataset is not set' in err and '\n' not in err
