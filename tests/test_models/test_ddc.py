"""Dynamic Directional Convolution (DDC) and its temperature hook."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmrskd.engine.hooks import DDCTemperatureHook
from mmrskd.models.layers import DynamicDirectionalConv2d as DDC
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import safe_load


def one_hot(batch, num_kernels, index, dtype=torch.float64):
    attention = torch.zeros(batch, num_kernels, dtype=dtype)
    attention[:, index] = 1
    return attention


def test_registered_as_ddc():
    assert MODELS.get('DDC') is DDC


def test_single_kernel_matches_conv2d():
    torch.manual_seed(0)
    ddc = DDC(8, 6, 3, stride=2, padding=2, dilation=2, groups=2,
              angles=(0, )).double()
    assert ddc.num_kernels == 1
    x = torch.randn(3, 8, 11, 9, dtype=torch.float64)
    expected = F.conv2d(x, ddc.base_weight[0], ddc.bias, stride=2,
                        padding=2, dilation=2, groups=2)
    torch.testing.assert_close(ddc(x), expected, rtol=0, atol=1e-12)


def test_bank_is_exact_rotations_of_base_parameters():
    torch.manual_seed(0)
    ddc = DDC(4, 5, 3, num_base_kernels=2, num_triangular_kernels=1)
    bank = ddc.kernel_bank()
    assert bank.shape == (12, 5, 4, 3, 3)
    for base in range(2):
        for turn in range(4):
            torch.testing.assert_close(
                bank[base * 4 + turn],
                torch.rot90(ddc.base_weight[base], turn, dims=(-2, -1)),
                rtol=0, atol=0)
    # triangular base: 6 free taps on and below the diagonal, zeros above
    triangle = bank[8]
    upper = torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)
    assert (triangle[..., upper] == 0).all()
    assert (triangle[..., ~upper] != 0).all()
    rows, cols = torch.tril_indices(3, 3)
    torch.testing.assert_close(triangle[..., rows, cols],
                               ddc.triangular_weight[0], rtol=0, atol=0)
    torch.testing.assert_close(bank[11], torch.rot90(triangle, 3, (-2, -1)),
                               rtol=0, atol=0)
    # no stored bank: parameters are the bases only (+ bias, attention)
    names = {name for name, _ in ddc.named_parameters()}
    assert names == {'base_weight', 'triangular_weight', 'bias',
                     'router.1.weight', 'router.3.weight', 'router.3.bias'}


def test_rotating_input_with_rotated_kernel_rotates_output():
    torch.manual_seed(0)
    ddc = DDC(3, 4, 3, padding=1, num_base_kernels=1,
              num_triangular_kernels=1).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    for base in range(2):
        upright = ddc(x, one_hot(2, 8, base * 4))
        for turn in range(1, 4):
            turned = ddc(
                torch.rot90(x, turn, dims=(-2, -1)),
                one_hot(2, 8, base * 4 + turn))
            torch.testing.assert_close(
                turned, torch.rot90(upright, turn, dims=(-2, -1)),
                rtol=0, atol=1e-12)


def test_resampled_angles_agree_with_exact_rotation():
    torch.manual_seed(0)
    ddc = DDC(2, 2, 3, angles=(0, 90.0001, 45)).double()
    bank = ddc.kernel_bank()
    # bilinear resampling at ~90 degrees lands on torch.rot90
    torch.testing.assert_close(
        bank[1], torch.rot90(bank[0], 1, (-2, -1)), rtol=0, atol=1e-4)
    # at 45 degrees a centre-only kernel spreads bilinearly: an edge-midpoint
    # tap samples the input at (sin 45, cos 45) from the centre, i.e. the
    # centre with weight (1 - sin 45)^2; corner taps sample outside (zero)
    centre_only = torch.zeros_like(ddc.base_weight)
    centre_only[..., 1, 1] = 1.0
    with torch.no_grad():
        ddc.base_weight.copy_(centre_only)
    edge = (1 - 0.5**0.5)**2
    expected = torch.tensor([[0, edge, 0], [edge, 1, edge], [0, edge, 0]],
                            dtype=torch.float64)
    torch.testing.assert_close(ddc.kernel_bank()[2],
                               expected.expand(2, 2, 3, 3))


def test_gradients_reach_every_base_parameter():
    torch.manual_seed(0)
    ddc = DDC(6, 4, 3, padding=1, num_base_kernels=2,
              num_triangular_kernels=1, angles=(0, 45, 90, 180, 270))
    ddc(torch.randn(2, 6, 7, 7)).square().sum().backward()
    for name, param in ddc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # every tap of the compact triangle is trained
    assert (ddc.triangular_weight.grad != 0).all()


def test_per_sample_kernels_match_reference_loop():
    torch.manual_seed(0)
    ddc = DDC(4, 6, 3, padding=1, groups=2, num_base_kernels=2,
              temperature=1.0).double()
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    # reference: GAP -> 1x1 -> ReLU -> 1x1 -> softmax, then one conv each
    pooled = x.mean((2, 3))
    hidden = F.relu(pooled @ ddc.router[1].weight.flatten(1).t())
    logits = hidden @ ddc.router[3].weight.flatten(1).t() + ddc.router[3].bias
    attention = torch.softmax(logits, 1)
    torch.testing.assert_close(ddc.compute_attention(x), attention)
    bank = ddc.kernel_bank()
    for i in range(3):
        weight = (attention[i].view(-1, 1, 1, 1, 1) * bank).sum(0)
        expected = F.conv2d(x[i:i + 1], weight, ddc.bias, padding=1,
                            groups=2)
        torch.testing.assert_close(ddc(x)[i:i + 1], expected, rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize('conv_args', [
    dict(padding=1),
    dict(stride=2, padding=2, dilation=2, groups=2),
])
def test_forward_at_positions_equals_full_forward(conv_args):
    torch.manual_seed(0)
    ddc = DDC(4, 6, 3, num_base_kernels=2, temperature=1.0,
              **conv_args).double()
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    full = ddc(x)  # (3, 6, H', W')
    flat = full.permute(0, 2, 3, 1).reshape(-1, 6)
    # positions of all three samples, none of the middle one's first row
    positions = torch.tensor([0, 5, len(flat) // 3 + full.shape[3] + 1,
                              len(flat) - 1])
    picked = ddc.forward_at(x, positions)
    torch.testing.assert_close(picked, flat[positions], rtol=0, atol=1e-12)
    weights = torch.randn(len(positions), 6, dtype=torch.float64)
    expected = torch.autograd.grad((flat[positions] * weights).sum(),
                                   [x, *ddc.parameters()])
    actual = torch.autograd.grad((picked * weights).sum(),
                                 [x, *ddc.parameters()])
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # no position: an empty output, still zero gradients for the weights
    empty = ddc.forward_at(x, positions[:0])
    assert empty.shape == (0, 6)
    grads = torch.autograd.grad(empty.sum(), list(ddc.parameters()),
                                allow_unused=True)
    assert all(g is not None and not g.any() for g in grads)


def test_temperature_sharpens_attention_and_is_saved():
    torch.manual_seed(0)
    ddc = DDC(4, 4, 3, padding=1)
    x = torch.randn(2, 4, 6, 6)
    logits = ddc.router(x).flatten(1)
    torch.testing.assert_close(ddc.compute_attention(x),
                               torch.softmax(logits / 34, 1))
    ddc.set_temperature(1.0)
    torch.testing.assert_close(ddc.compute_attention(x),
                               torch.softmax(logits, 1))
    state = ddc.state_dict()
    assert state['temperature'].item() == 1.0
    restored = DDC(4, 4, 3, padding=1)
    assert restored.temperature.item() == 34.0
    restored.load_state_dict(state)
    assert restored.temperature.item() == 1.0
    with pytest.raises(MMRSKDError, match='temperature must be > 0'):
        ddc.set_temperature(0)


def test_conv_module_builds_ddc_from_conv_cfg():
    # default scope is mmrskd (tests/conftest.py)
    module = ConvModule(4, 8, 3, padding=1, conv_cfg=dict(
        type='DDC', num_triangular_kernels=1),
        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    assert isinstance(module.conv, DDC)
    assert module.conv.bias is None  # ConvModule: no bias before a norm
    assert module.conv.num_kernels == 8
    out = module(torch.randn(2, 4, 8, 8))
    assert out.shape == (2, 8, 8, 8)
    # the scope prefix works from any scope
    scoped = ConvModule(4, 8, 3, conv_cfg=dict(type='mmrskd.DDC'))
    assert isinstance(scoped.conv, DDC)


def test_bad_arguments_give_one_line_errors():
    with pytest.raises(MMRSKDError, match=r'kernel_size=\(3, 5\)'):
        DDC(4, 4, (3, 5))
    with pytest.raises(MMRSKDError, match='divisible by groups=3'):
        DDC(4, 4, 3, groups=3)
    with pytest.raises(MMRSKDError, match='positive count'):
        DDC(4, 4, 3, num_base_kernels=0)
    ddc = DDC(4, 4, 3)
    with pytest.raises(MMRSKDError, match='input has 3 channels'):
        ddc(torch.randn(1, 3, 5, 5))
    with pytest.raises(MMRSKDError, match=r'shape \(1, 4\)'):
        ddc(torch.randn(1, 4, 5, 5), torch.ones(1, 3))


class _ToyDataset(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.full((3, 8, 8), float(index)))


class _ToyDDCModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.conv = ConvModule(3, 4, 3, padding=1,
                               conv_cfg=dict(type='DDC'))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.conv(torch.stack(inputs) if isinstance(inputs, list)
                        else inputs)
        return dict(loss=out.square().mean()) if mode == 'loss' else out


class _RecordTemperature(Hook):
    """Records the layer's temperature when training starts (after a resume
    has loaded the checkpoint) and at each epoch start."""
    priority = 'LOW'  # after DDCTemperatureHook ('NORMAL')

    def __init__(self):
        self.at_start = None
        self.seen = []

    @staticmethod
    def _temperature(runner):
        layer = runner.model.conv.conv
        return layer.temperature.item() if isinstance(layer, DDC) else None

    def before_train(self, runner):
        self.at_start = self._temperature(runner)

    def before_train_epoch(self, runner):
        self.seen.append(self._temperature(runner))


def _runner(work_dir, max_epochs, hook_cfg, resume=False):
    recorder = _RecordTemperature()
    runner = Runner(
        model=_ToyDDCModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[copy.deepcopy(hook_cfg)],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=None),
        resume=resume,
        default_scope='mmrskd')
    runner.register_hook(recorder)
    return runner, recorder


def test_temperature_hook_schedule_and_resume(tmp_path):
    hook = dict(type='DDCTemperatureHook', start=34, step=15, end=1)
    runner, recorder = _runner(tmp_path, 2, hook)
    runner.train()
    assert recorder.seen == [34.0, 19.0]
    assert runner.model.conv.conv.temperature.item() == 19.0
    checkpoint = safe_load(str(tmp_path / 'epoch_2.pth'))
    assert checkpoint['state_dict']['conv.conv.temperature'].item() == 19.0

    resumed, recorder = _runner(tmp_path, 4, hook, resume=True)
    assert resumed.model.conv.conv.temperature.item() == 34.0  # fresh
    resumed.train()
    assert recorder.at_start == 19.0  # restored from the checkpoint
    assert recorder.seen == [4.0, 1.0]  # epochs 3, 4: 34 - 30, clamped


def test_temperature_hook_per_iteration_and_errors(tmp_path):
    hook = DDCTemperatureHook(start=10, step=2, end=3, by_epoch=False,
                              interval=2)
    assert [hook.temperature_at(n) for n in range(5)] == [10, 8, 6, 4, 3]
    with pytest.raises(MMRSKDError, match='start >= end > 0'):
        DDCTemperatureHook(start=1, end=2)

    per_iter = dict(type='DDCTemperatureHook', start=10, step=2, end=3,
                    by_epoch=False, interval=2)
    runner, _ = _runner(tmp_path / 'iters', 2, per_iter)
    runner.train()  # 4 iterations: T = 10 at iteration 0, 8 at iteration 2
    assert runner.model.conv.conv.temperature.item() == 8.0

    runner, _ = _runner(tmp_path / 'no_ddc', 1, per_iter)
    runner.model.conv = ConvModule(3, 4, 3, padding=1)  # no DDC left
    with pytest.raises(MMRSKDError, match='has no DDC layer'):
        runner.train()
