"""Every shipped config loads and its model builds (no weights fetched)."""
import os.path as osp
import re
import warnings

import pytest
from mmengine.config import Config

from mmrskd.registry import MODELS
from mmrskd.testing.config_fingerprint import REPO, shipped_configs

CONFIGS = shipped_configs()
# {method}_{student}_{teacher}_{schedule}_{dataset}.py or a detector's
# {model}_{backbone...}_{schedule}_{dataset}.py, OpenMMLab style
NAME = re.compile(r'^[a-z0-9][a-z0-9.\-]*(_[a-z0-9][a-z0-9.\-]*){2,}\.py$')


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert NAME.match(osp.basename(path)), f'{path}: name style'
    cfg = Config.fromfile(path)
    assert cfg.get('default_scope') == 'mmrskd', path
    model = cfg.model
    if model.get('type') == 'SingleTeacherDistiller':
        model.teacher_ckpt = None  # zoo URL or a work_dirs path
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        detector = MODELS.build(model)
    assert sum(p.numel() for p in detector.parameters()) > 0
