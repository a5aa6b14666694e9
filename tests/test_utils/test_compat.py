"""Each upstream workaround in mmrskd.utils.compat is needed, and works."""
import argparse
import collections
import collections.abc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from mmrskd.registry import MODELS
from mmrskd.utils.checkpoint import UnsafeCheckpointError, safe_load


def run_python(code):
    """Run ``code`` in a fresh interpreter (no mmrskd imported)."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_mmrotate_refuses_mmdet_3_3_without_compat():
    result = run_python('import mmrotate')
    assert result.returncode != 0
    assert 'AssertionError' in result.stderr
    assert 'MMDetection 3.3.0 is incompatible' in result.stderr


def test_mmrotate_needs_collections_sequence_on_this_python():
    result = run_python("""
        import mmdet
        mmdet.__version__ = '3.1.0'
        import mmrotate.models
    """)
    assert result.returncode != 0
    assert "cannot import name 'Sequence' from 'collections'" in result.stderr


def test_import_mmrotate_leaves_mmdet_version_and_everything_usable():
    import mmdet
    import mmrotate.models  # noqa: F401
    assert mmdet.__version__ == '3.3.0'
    assert collections.Sequence is collections.abc.Sequence
    assert MODELS.get('mmrotate.RotatedFCOSHead') is not None
    assert MODELS.get('mmdet.RetinaNet') is not None


def _mmengine_checkpoint(tmp_path):
    """A checkpoint written by mmengine's CheckpointHook, numpy and message
    hub state included."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, x, mode='loss'):
            return dict(loss=self.fc(x).pow(2).mean())

    class Data(Dataset):
        metainfo = dict(classes=('a', 'b'))

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return dict(x=torch.full((2, ), float(i)))

    runner = Runner(
        model=Toy(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=Data(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        default_scope='mmrskd', randomness=dict(seed=0))
    runner.train()
    return tmp_path / 'epoch_1.pth'


def test_mmengine_checkpoints_need_the_allow_list(tmp_path):
    path = _mmengine_checkpoint(tmp_path)
    plain = run_python(f"""
        import torch
        torch.load({str(path)!r}, weights_only=True)
    """)
    assert plain.returncode != 0 and 'Weights only load failed' in plain.stderr
    # a fresh process, as --resume is, before any HistoryBuffer exists
    fresh = run_python(f"""
        import mmrskd
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint({str(path)!r}, map_location='cpu')
        print(ckpt['meta']['epoch'])
    """)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.strip().splitlines()[-1] == '1'
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['epoch'] == 1
    hub = ckpt['message_hub']['log_scalars']
    assert isinstance(hub['train/loss'], HistoryBuffer)
    assert np.isfinite(hub['train/loss'].mean())


class _Payload:
    marker = None

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _GetattrPayload:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__subclasses__'))


@pytest.mark.parametrize('loader', ['safe_load', 'mmengine'])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, loader):
    marker = tmp_path / 'pwned'
    _Payload.marker = str(marker)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=_Payload()),
               path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'evil.pth: refused to unpickle \(Trying to load '
                       r'unsupported GLOBAL posix.system'):
        if loader == 'safe_load':
            safe_load(path)
        else:
            load_checkpoint(nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=_GetattrPayload()), path)
    with pytest.raises(UnsafeCheckpointError, match='only HistoryBuffer'):
        safe_load(path)


def test_trusted_legacy_load_is_explicit_and_warns(tmp_path, monkeypatch):
    path = tmp_path / 'legacy.pth'
    # e.g. old training scripts pickled their argparse namespace
    torch.save(dict(meta=argparse.Namespace(a=1)), path)
    with pytest.raises(UnsafeCheckpointError, match='--trust-checkpoint'):
        safe_load(path)
    with pytest.warns(UserWarning, match='weights_only=False'):
        assert safe_load(path, trust=True)['meta'].a == 1
    monkeypatch.setenv('MMRSKD_TRUST_CHECKPOINTS', '1')
    with pytest.warns(UserWarning):
        assert safe_load(path)['meta'].a == 1


@pytest.mark.parametrize('base, model_type', [
    ('mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_'
     'dota.py', 'RetinaNet'),
    ('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py', 'RetinaNet'),
])
def test_package_base_configs_build_under_mmrskd_scope(tmp_path, base,
                                                       model_type):
    config = tmp_path / 'cfg.py'
    config.write_text(f"_base_ = '{base}'\ndefault_scope = 'mmrskd'\n"
                      'model = dict(backbone=dict(init_cfg=None))\n')
    cfg = Config.fromfile(str(config))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == model_type


def test_registry_chain_and_scoped_typo_error():
    from mmrotate.registry import MODELS as MMROTATE_MODELS
    from mmengine.registry import MODELS as ROOT
    assert MODELS.parent is MMROTATE_MODELS
    assert MMROTATE_MODELS.parent is ROOT
    assert MODELS.get('FocalLoss') is MODELS.get('mmdet.FocalLoss')
    with pytest.raises(KeyError, match=r'RetinaNett is not in the '
                       r'mmrskd::model registry'):
        MODELS.build(dict(type='RetinaNett'))


def test_mmrotate_map_workers_start_without_mmrskd_in_main():
    # pytest's __main__ does not import mmrskd: spawned workers must still
    # pass mmrotate's version assert (they hang otherwise).
    import numpy as np
    from mmrotate.evaluation.functional import eval_rbbox_map
    det = [[np.array([[10, 10, 8, 4, 0.1, 0.9]], dtype=np.float32)]]
    ann = [dict(bboxes=np.array([[10, 10, 8, 4, 0.1]], dtype=np.float32),
                labels=np.array([0]),
                bboxes_ignore=np.zeros((0, 5), dtype=np.float32),
                labels_ignore=np.zeros(0))]
    mean_ap, _ = eval_rbbox_map(det, ann, iou_thr=0.5, nproc=1,
                                logger='silent')
    assert mean_ap == pytest.approx(1.0)


def test_torchvision_scheme_resolves_without_torchvision(monkeypatch):
    import importlib.util
    from mmengine.runner import checkpoint as mmengine_checkpoint
    assert importlib.util.find_spec('torchvision') is None
    fetched = []
    monkeypatch.setattr(
        mmengine_checkpoint, 'load_from_http',
        lambda url, map_location=None: fetched.append(url) or {})
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.load_checkpoint('torchvision://resnet18')
    assert fetched == [
        'https://download.pytorch.org/models/resnet18-f37072fd.pth']


@pytest.mark.parametrize('layer_type', ['DeformConv2dPack',
                                        'ModulatedDeformConv2dPack'])
def test_cpu_deform_convs_run_in_fp32_under_bf16_autocast(layer_type):
    import mmcv.ops
    torch.manual_seed(0)
    layer = getattr(mmcv.ops, layer_type)(4, 6, 3, padding=1)
    nn.init.normal_(layer.conv_offset.weight, std=0.1)  # non-zero offsets
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    # the need: mmcv's CPU kernels have no bf16 version
    with pytest.raises(NotImplementedError, match='BFloat16'):
        layer.to(torch.bfloat16)(x.detach().bfloat16())
    layer.float()
    expected = layer(x)
    (grad_expected, ) = torch.autograd.grad(expected.sum(), x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    (grad, ) = torch.autograd.grad(out.sum(), x)
    assert out.dtype == torch.float32
    # only the offset conv (a torch conv) ran in bf16 (its rounded offsets move the samples): a few % relative error
    assert (out - expected).norm() / expected.norm() < 0.06
    assert (grad - grad_expected).norm() / grad_expected.norm() < 0.06
