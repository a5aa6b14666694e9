"""Two gloo processes on the CPU train like one process with the same total
batch (tools/dist_train.sh, mmengine's launcher)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from mmrskd.utils.checkpoint import safe_load
from test_training.conftest import REPO, tiny_fcos_gn_distill_config


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(command, env):
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def test_two_processes_match_one_process_with_the_same_total_batch(
        tmp_path, dota_root):
    env = dict(os.environ, PY=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1')
    single = tiny_fcos_gn_distill_config(tmp_path, dota_root, batch_size=4)
    dist = tiny_fcos_gn_distill_config(tmp_path, dota_root, batch_size=2)
    run([sys.executable, 'tools/train.py', single, '--work-dir',
         str(tmp_path / 'single')], env)
    log = run(['bash', 'tools/dist_train.sh', dist, '2', '--work-dir',
               str(tmp_path / 'dist'), '--dist-backend', 'gloo'], env)
    assert 'Distributed launcher: pytorch' in log or 'world_size: 2' in log

    one = safe_load(osp.join(tmp_path, 'single', 'epoch_1.pth'))
    two = safe_load(osp.join(tmp_path, 'dist', 'epoch_1.pth'))
    assert one['meta']['iter'] == two['meta']['iter'] == 2
    assert set(one['state_dict']) == set(two['state_dict'])
    assert not any('teacher' in key for key in two['state_dict'])
    # same weights after the same two optimizer steps on the same 8 images
    for key, value in one['state_dict'].items():
        assert torch.allclose(value, two['state_dict'][key], atol=2e-5,
                              rtol=1e-4), key
