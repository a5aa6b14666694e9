"""tools/analysis_tools/browse_dataset.py on a tiny hand-built dataset."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from toy_rs_dataset import BACKGROUND, write_config

TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'analysis_tools',
    'browse_dataset.py')


def _tool():
    spec = importlib.util.spec_from_file_location('browse_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pipeline(box_type, convert_to=None):
    pipeline = [
        dict(type='mmdet.LoadImageFromFile'),
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type=box_type)
    ]
    if convert_to:
        pipeline.append(
            dict(type='mmrotate.ConvertBoxType',
                 box_type_mapping=dict(gt_bboxes=convert_to)))
    return pipeline + [dict(type='mmdet.PackDetInputs')]


@pytest.mark.parametrize('kind, box_type, convert_to', [
    ('qbox', 'qbox', None),
    ('qbox', 'qbox', 'rbox'),
    ('hbox', 'hbox', None),
])
def test_draws_every_box_type(tmp_path, kind, box_type, convert_to):
    config = write_config(tmp_path, kind, _pipeline(box_type, convert_to))
    out = tmp_path / 'vis'
    _tool().main([config, '--output-dir', str(out), '--num', '5'])
    assert sorted(os.listdir(out)) == ['00000_img0.png', '00001_img1.png']
    drawn = cv2.imread(str(out / '00000_img0.png'))
    assert drawn.shape == (160, 200, 3)
    # the plane (red in RGB -> BGR (0, 0, 255)) edge at y=30, x in 20..80
    edge = drawn[30, 30:70].astype(int)
    assert (np.abs(edge - (0, 0, 255)).sum(axis=1) < 60).all()
    # inside the box and far from every object the image is untouched
    assert (drawn[45, 40:60] == BACKGROUND).all()
    assert (drawn[150:, 160:] == BACKGROUND).all()
    # the ignored ship is drawn grey
    assert (np.abs(drawn[120, 88:93].astype(int) - 128) < 40).any()


def test_bad_num_is_one_line(tmp_path, capsys):
    config = write_config(tmp_path, 'qbox', _pipeline('qbox'))
    with pytest.raises(SystemExit):
        _tool().main([config, '--output-dir', str(tmp_path), '--num', '0'])
    err = capsys.readouterr().err.strip()
    assert '--num' in err and '\n' not in err
