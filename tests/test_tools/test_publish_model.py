"""tools/publish_model.py: a student-only release whose sha256 suffix is
right, whose config is a plain detector config, and on which tools/test.py
reproduces the run's metric and predictions."""
import glob
import hashlib
import importlib.util
import json
import os.path as osp
import pickle
import re
import sys

import pytest
import torch
import yaml
from mmengine.config import Config

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import safe_load

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import publish_model  # noqa: E402
import train  # noqa: E402
from test_sweep import write_configs  # noqa: E402

# tools/test.py by path: "import test" would find Python's own test package
_spec = importlib.util.spec_from_file_location(
    'mmrskd_tools_test', osp.join(REPO, 'tools', 'test.py'))
test_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(test_tool)

KD_PREFIXES = ('teacher.', 'student.', 'connectors.', 'distill_losses.',
               'loss_schedules.')


@pytest.fixture(scope='module')
def released(tmp_path_factory):
    """Train the tiny PKD distiller for one epoch, then publish it."""
    from mmrskd.datasets.synthetic import generate
    tmp = tmp_path_factory.mktemp('publish')
    data = tmp / 'data'
    generate('dota', str(data), 10, seed=1, img_size=128)
    paths = write_configs(str(tmp / 'configs'), str(data))
    work_dir = str(tmp / 'work')
    train.main([paths['kd'], '--work-dir', work_dir])
    out = str(tmp / 'release')
    release = publish_model.main([work_dir, out, '--name', 'pkd_tiny',
                                  '--collection', 'PKD'])
    return dict(release=release, work_dir=work_dir, out=out, paths=paths,
                tmp=tmp)


def test_weights_are_student_only_with_the_sha256_suffix(released):
    path = released['release']['checkpoint']
    with open(path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert osp.basename(path) == f'pkd_tiny-{sha[:8]}.pth'
    ckpt = safe_load(path)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert not any(k.startswith(KD_PREFIXES) for k in ckpt['state_dict'])
    assert ckpt['meta']['epoch'] == 1 and 'dataset_meta' in ckpt['meta']
    trained = safe_load(osp.join(released['work_dir'], 'epoch_1.pth'))
    assert {'optimizer', 'message_hub'} <= set(trained)  # what was dropped
    student = {k[len('student.'):]: v
               for k, v in trained['state_dict'].items()
               if k.startswith('student.')}
    assert ckpt['state_dict'].keys() == student.keys()
    for key, value in student.items():
        assert torch.equal(ckpt['state_dict'][key], value)


def test_released_config_is_a_plain_self_contained_detector(released):
    path = released['release']['config']
    text = open(path).read()
    assert not re.search(r'^_base_\s*=', text, re.M)
    assert 'teacher' not in text
    cfg = Config.fromfile(path)
    student = Config.fromfile(released['paths']['student']).model
    model_cfg = cfg.model.to_dict()
    # the student's config file had default_scope mmrskd
    assert model_cfg.pop('_scope_') == 'mmrskd'
    assert model_cfg == student.to_dict()
    assert cfg.val_cfg == dict(type='ValLoop')
    assert cfg.load_from is None and cfg.resume is False
    assert 'work_dir' not in cfg and 'launcher' not in cfg
    # loads the released weights strictly
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        safe_load(released['release']['checkpoint'])['state_dict'])


def test_tools_test_on_the_release_reproduces_the_run(released, tmp_path):
    release = released['release']
    scalars, = glob.glob(osp.join(released['work_dir'], '*', 'vis_data',
                                  'scalars.json'))
    logged = [json.loads(line) for line in open(scalars)]
    final = [r for r in logged if 'rsdet/mAP' in r][-1]

    ours = test_tool.main([release['config'], release['checkpoint'],
                           '--work-dir', str(tmp_path / 'a'), '--out',
                           str(tmp_path / 'released.pkl')])
    assert ours['rsdet/mAP'] == final['rsdet/mAP']
    assert ours['rsdet/mAP50'] == final['rsdet/mAP50']
    # and predicts exactly what the distiller's student predicted
    test_tool.main([released['paths']['kd'],
                    osp.join(released['work_dir'], 'epoch_1.pth'),
                    '--work-dir', str(tmp_path / 'b'), '--out',
                    str(tmp_path / 'distiller.pkl')])
    with open(tmp_path / 'released.pkl', 'rb') as f:
        a = pickle.load(f)
    with open(tmp_path / 'distiller.pkl', 'rb') as f:
        b = pickle.load(f)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(x['pred_instances'][key],
                               y['pred_instances'][key])
    entry = yaml.safe_load(open(release['metafile']))['Models'][0]
    assert entry['Results'][0]['Metrics'] == {
        'mAP': round(100 * final['rsdet/mAP'], 2),
        'mAP50': round(100 * final['rsdet/mAP50'], 2)}


def test_metafile_entry(released):
    entry = yaml.safe_load(open(released['release']['metafile']))[
        'Models'][0]
    weights = osp.basename(released['release']['checkpoint'])
    assert entry['Name'] == 'pkd_tiny' and entry['In Collection'] == 'PKD'
    assert entry['Weights'] == weights and entry['Config'] == 'pkd_tiny.py'
    assert entry['Results'][0]['Task'] == 'Oriented Object Detection'
    meta = entry['Metadata']
    assert meta['Epochs'] == 1 and meta['Batch Size'] == 4
    assert meta['Training Techniques'] == ['SGD', 'Knowledge Distillation',
                                           'PKDLoss']
    assert meta['Training Resources'] == '1x CPU'
    assert meta['Teacher']['Config'] == released['paths']['teacher']
    assert set(meta['Teacher']['Metrics']) == {'mAP', 'mAP50'}
    assert meta['Student'] == dict(Config=released['paths']['student'])
    student = MODELS.build(Config.fromfile(released['paths']['student']).model)
    assert meta['Parameters'] == sum(p.numel() for p in student.parameters())
    assert meta['Input Shape'] == [128, 128]
    # FLOPs as tools/analysis_tools/get_flops.py counts them
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import get_flops
    flops = get_flops.main([released['release']['config'], '--shape', '128'])
    assert meta['FLOPs'] == flops['flops'] > 0
    assert len(released['release']['logs']) == 2  # .log and .log.json


def test_metafile_upsert_and_errors(released, tmp_path):
    from mmrskd.engine.release import update_metafile
    metafile = tmp_path / 'metafile.yml'
    metafile.write_text(yaml.safe_dump(dict(
        Collections=[dict(Name='PKD')],
        Models=[dict(Name='other'), dict(Name='pkd_tiny', Weights='old')])))
    entry = yaml.safe_load(open(released['release']['metafile']))[
        'Models'][0]
    update_metafile(str(metafile), entry)
    update_metafile(str(metafile), entry)
    data = yaml.safe_load(metafile.read_text())
    assert data['Collections'] == [dict(Name='PKD')]
    assert [m['Name'] for m in data['Models']] == ['other', 'pkd_tiny']
    assert data['Models'][1] == entry

    from mmrskd.engine.release import publish
    with pytest.raises(MMRSKDError, match='neither a work dir'):
        publish(str(tmp_path / 'missing'), str(tmp_path / 'out'))
    with pytest.raises(MMRSKDError, match='best_'):
        publish(released['work_dir'], str(tmp_path / 'out'),
                checkpoint='best')
    # only distilled students are released
    with pytest.raises(MMRSKDError, match='not a distiller config'):
        publish(released['work_dir'], str(tmp_path / 'out'),
                config=released['paths']['student'])
