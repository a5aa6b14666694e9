"""``--amp`` distillation (bf16 autocast on the CPU, CPUBF16OptimWrapper) for
every CPU config of every method and baseline: two steps, all loss terms
finite, the KD terms logged, the step really run in bf16."""
import glob
import os.path as osp
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmrskd.registry import MODELS
from mmrskd.testing import demo_batch, trains_on_rotated_boxes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', '*', '*synthetic*.py'))
    if 'teacher' in Config.fromfile(path).model)


def test_every_method_and_baseline_is_covered():
    methods = {path.split(osp.sep)[1] for path in CONFIGS}
    assert {'admd', 'csakd', 'dked', 'ltd', 'demo', 'fgd', 'fitnet',
            'crosskd'} <= methods


@pytest.mark.parametrize('config', CONFIGS)
def test_bf16_distillation_steps_are_finite(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    cfg.optim_wrapper.type = 'CPUBF16OptimWrapper'  # what --amp selects
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    dtypes = []
    hook = model.student.backbone.register_forward_hook(
        lambda module, args, out: dtypes.append(out[-1].dtype))
    rotated = trains_on_rotated_boxes(cfg)
    for step in range(2):
        inputs, samples = demo_batch(
            model.student, size=96, num_boxes=4, rotated=rotated, seed=step,
            num_classes=model.student.bbox_head.num_classes)
        log = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim_wrapper)
        for name, value in log.items():
            assert torch.isfinite(value).all(), f'{name} = {value}'
        assert set(model.distill_term_names) <= set(log)
    hook.remove()
    assert dtypes == [torch.bfloat16] * 2
    for name, param in model.named_parameters():
        assert param.dtype == torch.float32 and torch.isfinite(param).all(), \
            name
