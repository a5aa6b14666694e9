"""What a shipped config resolves to, for behaviour-equality checks across
refactors: the model's structure and its losses on a fixed batch.

A fingerprint has three parts, each a SHA-256 over sorted lines:

* ``student``, ``teacher`` (distillers) or ``model``: every module's
  path and class name, and every state-dict entry's name and shape;
* ``distill`` (distillers): the state-dict names and shapes of what the
  distiller trains besides the student (connectors, distillation losses,
  schedules). Module classes are left out there: how a loss is split into
  helper modules is an implementation detail, its values are not.

The losses are ``model.loss`` on :func:`demo_batch` images (seeded) after a
seeded ``init_weights`` with pretrained ``init_cfg`` dropped and no teacher
checkpoint (no downloads), one float per logged key (lists summed, as
mmengine's ``parse_losses`` does).
"""
import glob
import hashlib
import os.path as osp
import warnings
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.model import BaseModule
from torch import nn

from mmrskd.registry import MODELS
from mmrskd.testing.tiny_detectors import demo_batch, trains_on_rotated_boxes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def shipped_configs(repo: str = REPO) -> List[str]:
    """Every config a user can train, relative to ``repo``: files under
    ``configs/`` that are neither in a ``_base_`` folder nor named
    ``_*.py``."""
    paths = glob.glob(osp.join(repo, 'configs', '**', '*.py'), recursive=True)
    return sorted(
        osp.relpath(path, repo) for path in paths
        if not osp.basename(path).startswith('_')
        and '_base_' not in osp.relpath(path, repo).split(osp.sep))


def _digest(lines: List[str]) -> str:
    return hashlib.sha256('\n'.join(sorted(lines)).encode()).hexdigest()


def _state_lines(module: nn.Module, skip: str = None) -> List[str]:
    return [f'{name} {tuple(value.shape)}'
            for name, value in module.state_dict().items()
            if skip is None or not name.startswith(skip)]


def _module_lines(module: nn.Module) -> List[str]:
    return [f'{name} {type(sub).__module__}.{type(sub).__qualname__}'
            for name, sub in module.named_modules()]


def model_fingerprint(model: nn.Module) -> Dict[str, str]:
    """The structure hashes of a detector or a distiller (see module
    docstring)."""
    teacher = getattr(model, 'teacher', None)
    if teacher is None:
        return dict(model=_digest(_module_lines(model) + _state_lines(model)))
    student = model.student
    return dict(
        student=_digest(_module_lines(student) + _state_lines(student)),
        teacher=_digest(_module_lines(teacher) + _state_lines(teacher)),
        distill=_digest(_state_lines(model, skip='student.')))


def _drop_pretrained(model: nn.Module):
    """Forget ``init_cfg`` that would load weights (zoo URLs, torchvision):
    the rest of each module's initialisation still runs."""
    teacher = getattr(model, 'teacher', None)
    modules = list(model.modules()) + (
        [] if teacher is None else list(teacher.modules()))
    for module in modules:
        if isinstance(module, BaseModule) and 'Pretrained' in repr(
                module.init_cfg):
            module.init_cfg = None


def _num_classes(detector: nn.Module) -> int:
    return getattr(detector.bbox_head, 'num_classes')


def build_config_model(path: str, seed: int = 0) -> nn.Module:
    """The model of config ``path`` (relative to the repository root),
    initialised from ``seed``, without weights from anywhere."""
    cfg = Config.fromfile(osp.join(REPO, path))
    model_cfg = cfg.model
    if 'teacher_ckpt' in model_cfg:
        model_cfg.teacher_ckpt = None  # zoo URL or a work_dirs path
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(seed)
        model = MODELS.build(model_cfg)
        _drop_pretrained(model)
        torch.manual_seed(seed)
        model.init_weights()
    return model


@torch.no_grad()
def _floats(losses: Dict[str, object]) -> Dict[str, float]:
    values = {}
    for key, value in losses.items():
        if isinstance(value, (list, tuple)):
            value = sum(v.sum() for v in value)
        values[key] = float(value.sum()) if torch.is_tensor(value) else \
            float(value)
    return values


def config_fingerprint(path: str, size: int = 128, seed: int = 0) -> dict:
    """Structure hashes and losses of config ``path`` on a batch of two
    ``size`` px images with three random boxes each (rotated when the
    config trains on rotated boxes)."""
    cfg = Config.fromfile(osp.join(REPO, path))
    model = build_config_model(path, seed)
    detector = getattr(model, 'student', model)
    classes = _num_classes(detector)
    if hasattr(model, 'teacher'):
        classes = min(classes, _num_classes(model.teacher))
    inputs, samples = demo_batch(
        model, num_images=2, size=size, num_boxes=3, num_classes=classes,
        rotated=trains_on_rotated_boxes(cfg), seed=seed)
    model.train()
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        losses = model.loss(inputs, samples)
    return dict(fingerprint=model_fingerprint(model), size=size,
                losses=_floats(losses))
