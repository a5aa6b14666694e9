"""DOTA split: window arithmetic, border objects, files, split->merge."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import shapely
import torch
from shapely.geometry import Polygon, box

from mmrskd.datasets.dota import parse_dota_txt
from mmrskd.datasets.dota_split import (SPLIT_PRESETS, crop_patch,
                                        sliding_windows, window_objects)
from mmrskd.evaluation import RSDetMetric

TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters',
    'dota_split.py')


def _tool():
    spec = importlib.util.spec_from_file_location('dota_split_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_window_starts_by_hand():
    # 2100 px, size 1024, gap 200: steps of 824, the last moved to 2100-1024
    windows = sliding_windows(2100, 900, **SPLIT_PRESETS['ss'])
    assert sorted(windows[:, 0].tolist()) == [0, 824, 1076]
    assert windows[:, 1].tolist() == [0, 0, 0]
    assert (windows[:, 2:] - windows[:, :2] == 1024).all()
    # rate 1.5: 682 px windows with 333 px gaps (steps of 349)
    windows = sliding_windows(1500, 682, sizes=[1024], gaps=[500],
                              rates=[1.5])
    assert sorted(windows[:, 0].tolist()) == [0, 349, 698, 818]


@pytest.mark.parametrize('preset', ['ss', 'ms'])
@pytest.mark.parametrize('width, height', [(1024, 1024), (1025, 3000),
                                           (300, 200), (2100, 1500),
                                           (4000, 700)])
def test_windows_cover_the_whole_image(preset, width, height):
    windows = sliding_windows(width, height, **SPLIT_PRESETS[preset])
    covered = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in windows:
        assert 0 <= x1 < width and 0 <= y1 < height
        covered[y1:y2, x1:x2] = True
    assert covered.all()


def test_tiny_image_gives_one_padded_patch():
    windows = sliding_windows(300, 200, **SPLIT_PRESETS['ss'])
    assert windows.tolist() == [[0, 0, 1024, 1024]]
    # ms keeps only the smallest window (the largest image fraction)
    windows = sliding_windows(300, 200, **SPLIT_PRESETS['ms'])
    assert windows.tolist() == [[0, 0, 682, 682]]

    img = np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)
    patch = crop_patch(img, windows[0], (104, 116, 124))
    assert patch.shape == (682, 682, 3)
    np.testing.assert_array_equal(patch[:200, :300], img)
    assert (patch[200:] == (104, 116, 124)).all()
    assert (patch[:, 300:] == (104, 116, 124)).all()
    assert crop_patch(img, windows[0], no_padding=True).shape == (200, 300, 3)


def test_border_objects_are_kept_by_iof_and_clipped():
    windows = np.array([[0, 0, 1024, 1024], [824, 0, 1848, 1024]])
    polys = np.array([
        [900, 10, 940, 10, 940, 50, 900, 50],  # inside both windows
        [1010, 100, 1030, 100, 1030, 140, 1010, 140],  # IoF 0.7 in w0
        [1000, 200, 1040, 200, 1040, 240, 1000, 240],  # IoF 0.6 in w0
        # a turned square cut by x=1024: 5-vertex intersection in w0
        [1009, 300, 1039, 320, 1019, 350, 989, 330],
    ], dtype=np.float64)
    (inds0, out0, cut0), (inds1, out1, cut1) = window_objects(
        polys, windows, iof_thr=0.7)

    assert inds1.tolist() == [0, 1, 2, 3] and not cut1.any()
    np.testing.assert_allclose(out1, polys - [824, 0] * 4)  # shifted only

    assert inds0.tolist() == [0, 1, 3]
    assert cut0.tolist() == [False, True, True]
    np.testing.assert_allclose(out0[0], polys[0])
    # clipped to the border, first vertex kept, clockwise on screen
    np.testing.assert_allclose(out0[1],
                               [1010, 100, 1024, 100, 1024, 140, 1010, 140])
    # 5 corners -> the minimum-area rectangle around the clipped part
    clipped = Polygon(polys[3].reshape(4, 2)).intersection(
        box(0, 0, 1024, 1024))
    rect = Polygon(out0[2].reshape(4, 2))
    assert rect.buffer(1e-3).contains(clipped)
    assert rect.area == pytest.approx(clipped.minimum_rotated_rectangle.area,
                                      rel=1e-3)
    assert shapely.is_ccw(rect.exterior)  # positive area in y-down pixels


def _write_dota(folder, name, img, lines):
    os.makedirs(osp.join(folder, 'images'), exist_ok=True)
    os.makedirs(osp.join(folder, 'labelTxt'), exist_ok=True)
    cv2.imwrite(osp.join(folder, 'images', name + '.png'), img)
    with open(osp.join(folder, 'labelTxt', name + '.txt'), 'w') as f:
        f.write('imagesource:GoogleEarth\ngsd:0.3\n' + ''.join(lines))


def test_cli_writes_patches_and_labels(tmp_path):
    img = np.random.default_rng(1).integers(0, 255, (900, 1300, 3), np.uint8)
    _write_dota(str(tmp_path), 'P0007', img, [
        '100 100 150 100 150 130 100 130 plane 0\n',
        '1200 500 1260 500 1260 540 1200 540 ship 1\n',
    ])
    out = tmp_path / 'split'
    _tool().main([
        '--img-dirs', str(tmp_path / 'images'), '--ann-dirs',
        str(tmp_path / 'labelTxt'), '--out-dir', str(out), '--preset', 'ss'
    ])
    # 1300 x 900: windows at x = 0 and 1300 - 1024, one row, padded below
    names = ['P0007__1024__0___0', 'P0007__1024__276___0']
    assert sorted(os.listdir(out / 'images')) == [n + '.png' for n in names]
    assert sorted(os.listdir(out / 'annfiles')) == [n + '.txt' for n in names]
    patch = cv2.imread(str(out / 'images' / (names[1] + '.png')))
    np.testing.assert_array_equal(patch[:900], img[:, 276:])
    assert (patch[900:] == (104, 116, 124)).all()

    polys, labels, difficulties = parse_dota_txt(
        str(out / 'annfiles' / (names[0] + '.txt')))
    assert labels == ['plane']
    np.testing.assert_allclose(polys, [[100, 100, 150, 100, 150, 130, 100,
                                        130]])
    polys, labels, difficulties = parse_dota_txt(
        str(out / 'annfiles' / (names[1] + '.txt')))
    assert labels == ['ship'] and difficulties.tolist() == [1]
    np.testing.assert_allclose(polys, [[924, 500, 984, 500, 984, 540, 924,
                                        540]])


def test_cli_errors_are_one_line(tmp_path, capsys):
    tool = _tool()
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'old.png').write_bytes(b'')
    (tmp_path / 'img').mkdir()
    for argv, message in [
        (['--img-dirs', str(tmp_path / 'img'), '--out-dir',
          str(tmp_path / 'out')], 'is not empty'),
        (['--img-dirs', str(tmp_path / 'img'), '--out-dir',
          str(tmp_path / 'new'), '--sizes', '512', '--gaps', '512'],
         'smaller than size'),
        (['--img-dirs', str(tmp_path / 'nope'), '--out-dir',
          str(tmp_path / 'new')], 'does not exist'),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            tool.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and '\n' not in err


def _random_objects(rng, width, height, num):
    """Non-overlapping rotated rectangles (NMS would merge overlapping
    objects of one class) smaller than the split gap."""
    lines, placed = [], []
    while len(lines) < num:
        w, h = rng.uniform(12, 80, 2)
        cx = rng.uniform(w, width - w)
        cy = rng.uniform(h, height - h)
        angle = rng.uniform(-np.pi / 2, np.pi / 2)
        cos, sin = np.cos(angle), np.sin(angle)
        pts = [(cx + cos * dx - sin * dy, cy + sin * dx + cos * dy)
               for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2),
                              (w / 2, h / 2), (-w / 2, h / 2))]
        poly = Polygon(pts)
        if any(poly.intersects(other) for other in placed):
            continue
        placed.append(poly)
        coords = ' '.join(f'{v:.1f}' for p in pts for v in p)
        name = ('plane', 'ship')[len(lines) % 2]
        lines.append(f'{coords} {name} {int(rng.random() < 0.2)}\n')
    return lines


@pytest.mark.parametrize('preset, box_type', [('ss', 'qbox'), ('ms', 'rbox')])
def test_split_then_merge_round_trip(tmp_path, preset, box_type):
    """Patch labels fed back as detections give AP 1 on the full image."""
    rng = np.random.default_rng(2)
    _write_dota(str(tmp_path), 'P0001', np.zeros((1700, 2300, 3), np.uint8),
                _random_objects(rng, 2300, 1700, 60))
    out = tmp_path / 'split'
    _tool().main([
        '--img-dirs', str(tmp_path / 'images'), '--ann-dirs',
        str(tmp_path / 'labelTxt'), '--out-dir', str(out), '--preset', preset,
        '--nproc', '2'
    ])
    classes = ('plane', 'ship')
    samples, truncated = [], 0
    for txt in sorted(os.listdir(out / 'annfiles')):
        polys, names, difficulties = parse_dota_txt(
            str(out / 'annfiles' / txt))
        cut = difficulties == 2
        truncated += int(cut.sum())
        # whole objects outrank clipped pieces, which NMS must remove
        scores = np.where(cut, 0.4, 0.9) + rng.uniform(0, 0.05, len(names))
        samples.append(
            dict(
                img_id=txt[:-4],
                pred_instances=dict(
                    bboxes=torch.as_tensor(polys),
                    scores=torch.as_tensor(scores),
                    labels=torch.as_tensor([classes.index(n)
                                            for n in names]))))
    assert truncated > 0  # the case exercises clipped labels
    metric = RSDetMetric(box_type=box_type, eval_mode='area',
                         merge_patches=True,
                         merged_ann_dir=str(tmp_path / 'labelTxt'))
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['rsdet/mAP'] == pytest.approx(1.0)
