"""tools/train.py → checkpoint without teacher → --resume → student export
that stock mmrotate loads and that predicts like the distiller."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmrskd.registry import MODELS
from mmrskd.utils.checkpoint import safe_load
from test_training.conftest import REPO, tiny_distill_config

sys.path.insert(0, osp.join(REPO, 'tools'))
import train  # noqa: E402
from model_converters import distill_to_student  # noqa: E402


@pytest.fixture(scope='module')
def trained(tmp_path_factory, dota_root):
    tmp_path = tmp_path_factory.mktemp('distill_run')
    config = tiny_distill_config(tmp_path, dota_root)
    work_dir = str(tmp_path / 'work')
    train.main([config, '--work-dir', work_dir])
    return config, work_dir


def test_checkpoint_holds_student_and_kd_modules_only(trained):
    _, work_dir = trained
    ckpt = safe_load(osp.join(work_dir, 'epoch_1.pth'))
    prefixes = {key.split('.')[0] for key in ckpt['state_dict']}
    assert prefixes == {'student', 'connectors'}
    assert not any('teacher' in key for key in ckpt['state_dict'])
    assert ckpt['meta']['iter'] == 2


def test_resume_continues_from_the_checkpoint(trained, capsys):
    config, work_dir = trained
    train.main([config, '--work-dir', work_dir, '--resume',
                '--cfg-options', 'train_cfg.max_epochs=2'])
    ckpt = safe_load(osp.join(work_dir, 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4
    log = sorted(p for p in (osp.join(work_dir, d) for d in
                             __import__('os').listdir(work_dir))
                 if osp.isdir(p))[-1]
    text = open(osp.join(log, osp.basename(log) + '.log')).read()
    assert 'resumed epoch: 1, iter: 2' in text


def test_exported_student_loads_in_stock_mmrotate_and_predicts_the_same(
        trained, tmp_path):
    config, work_dir = trained
    out = str(tmp_path / 'student.pth')
    distill_to_student.main([osp.join(work_dir, 'epoch_1.pth'), out])
    exported = safe_load(out)
    assert all(not k.startswith(('student.', 'connectors.', 'teacher.'))
               for k in exported['state_dict'])

    cfg = Config.fromfile(config)
    cfg.model.student.test_cfg.score_thr = 0.0  # two iterations in: low
    distiller = MODELS.build(cfg.model)
    load_checkpoint(distiller, osp.join(work_dir, 'epoch_1.pth'))
    distiller.eval()

    # the student's own config under mmrotate's scope, as its tools build it
    student_cfg = copy.deepcopy(cfg.model.student)
    from mmrotate.registry import MODELS as MMROTATE_MODELS
    with DefaultScope.overwrite_default_scope('mmrotate'):
        student = MMROTATE_MODELS.build(student_cfg)
    load_checkpoint(student, out, strict=True)
    student.eval()

    from mmrskd.testing import demo_batch
    inputs, samples = demo_batch(student, size=128, num_classes=5)
    with torch.no_grad():
        ours = distiller(inputs, copy.deepcopy(samples), mode='predict')
        stock = student.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, stock):
        assert len(a.pred_instances) > 0
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)


def test_teacher_metric_is_logged_once(trained):
    _, work_dir = trained
    logs = []
    for root, _, files in __import__('os').walk(work_dir):
        logs += [osp.join(root, f) for f in files if f.endswith('.log')]
    first = open(sorted(logs)[0]).read()
    assert first.count('teacher: teacher/rsdet/mAP') == 1
