"""The frozen teacher: built from its config, loaded from a detector's or a
distiller's checkpoint, and checked against the student."""
import os.path as osp
import warnings

import torch
from mmengine.runner import load_checkpoint

from mmrskd.models.distillers.model_config import resolve_model_cfg
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

# a distiller checkpoint holds the student under 'student.', a DDP one
# under 'module.': either loads as a detector
CHECKPOINT_KEY_PREFIXES = [(r'^student\.', ''), (r'^module\.', '')]


def build_teacher(spec, ckpt):
    """The teacher detector in eval mode without gradients, loaded
    weights-only and strictly from ``ckpt`` (a path or URL; None keeps it
    random, with a warning)."""
    teacher = MODELS.build(resolve_model_cfg(spec, 'teacher'))
    if ckpt is None:
        warnings.warn('teacher_ckpt is None: distilling from a randomly '
                      'initialised teacher')
    else:
        if '://' not in ckpt and not osp.isfile(osp.expanduser(ckpt)):
            raise MMRSKDError(f'teacher_ckpt not found: '
                              f'{osp.abspath(osp.expanduser(ckpt))}')
        load_checkpoint(teacher, ckpt, map_location='cpu', strict=True,
                        revise_keys=CHECKPOINT_KEY_PREFIXES)
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def num_classes(detector):
    """The class count of a detector's (or its RoI head's) box head, None
    when it has none."""
    for path in ('bbox_head', 'roi_head.bbox_head'):
        head = detector
        for name in path.split('.'):
            head = getattr(head, name, None)
        if head is not None and hasattr(head, 'num_classes'):
            return head.num_classes
    return None


def check_pairing(student, teacher, allow_class_mismatch=False):
    """Teacher and student predict the same classes (unless allowed) and
    see the same normalised inputs."""
    n_s, n_t = num_classes(student), num_classes(teacher)
    if not allow_class_mismatch and None not in (n_s, n_t) and n_s != n_t:
        raise MMRSKDError(
            f'teacher predicts {n_t} classes, student {n_s}: set the same '
            'num_classes in both heads (or allow_class_mismatch=True for '
            'feature-only distillation)')
    pre_s = student.data_preprocessor
    pre_t = teacher.data_preprocessor
    for attr in ('mean', 'std'):
        a, b = getattr(pre_s, attr, None), getattr(pre_t, attr, None)
        if torch.is_tensor(a) and torch.is_tensor(b) and (
                a.shape != b.shape or not torch.allclose(a, b)):
            raise MMRSKDError(
                f'teacher and student data_preprocessor.{attr} differ '
                f'({b.flatten().tolist()} vs {a.flatten().tolist()}): the '
                'teacher would see inputs it was not trained on')
