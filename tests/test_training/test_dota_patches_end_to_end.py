"""Split full DOTA images → train and test on patches → merge the patch
detections back → mAP on the full images, and Task1 submission files."""
import os
import os.path as osp
import sys

import pytest

from mmrskd.datasets.synthetic import generate
from test_training.conftest import CLASSES, REPO, data_settings
from mmrskd.testing import tiny_rotated_retinanet_cfg

sys.path.insert(0, osp.join(REPO, 'tools'))
import test as test_tool  # noqa: E402
import train  # noqa: E402
from dataset_converters import dota_split  # noqa: E402


@pytest.fixture(scope='module')
def split_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('dota_full')
    generate('dota', str(root), 10, seed=3, img_size=320)  # 8 train, 2 val
    split = tmp_path_factory.mktemp('dota_split')
    for part in ('train', 'val'):
        dota_split.main([
            '--img-dirs', str(root / part / 'images'), '--ann-dirs',
            str(root / part / 'labelTxt'), '--out-dir', str(split / part),
            '--sizes', '192', '--gaps', '64', '--rates', '1.0'
        ])
    return root, split


def test_train_on_patches_merge_and_evaluate_full_images(
        split_root, tmp_path, capsys):
    root, split = split_root
    patches = os.listdir(split / 'val' / 'images')
    assert len(patches) > 2 and all('__192__' in p for p in patches)
    model = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16,
                                       num_classes=len(CLASSES)).to_dict()
    model['test_cfg']['score_thr'] = 0.0
    config = tmp_path / 'patches.py'
    config.write_text(data_settings(str(split), ann_subdir='annfiles') + f"""
val_evaluator = dict(_delete_=True, type='RSDetMetric', box_type='rbox',
                     merge_patches=True,
                     merged_ann_dir='{root}/val/labelTxt/')
test_evaluator = [
    dict(type='RSDetMetric', box_type='rbox', merge_patches=True,
         merged_ann_dir='{root}/val/labelTxt/'),
    dict(type='RSDetMetric', box_type='rbox', merge_patches=True,
         format_only=True, outfile_prefix='{tmp_path}/submission',
         prefix='submission')]
model = {model!r}
""")
    work_dir = str(tmp_path / 'work')
    train.main([str(config), '--work-dir', work_dir])
    metrics = test_tool.main([str(config), osp.join(work_dir, 'epoch_1.pth'),
                              '--work-dir', work_dir])
    assert 0.0 <= metrics['rsdet/mAP'] <= 1.0
    out = capsys.readouterr().out
    assert f'merged {len(patches)} patches into 2 full images' in out
    task1 = sorted(f for f in os.listdir(tmp_path / 'submission')
                   if f.startswith('Task1_'))
    assert task1 == [f'Task1_{c}.txt' for c in sorted(CLASSES)]
    lines = open(tmp_path / 'submission' / 'Task1_plane.txt').read().split()
    if lines:  # "image score x1 y1 ... x4 y4" with full-image names
        assert not any('__' in token for token in lines[::10])
