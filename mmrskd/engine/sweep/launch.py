"""The command and environment that train one sweep run: ``tools/train.py``
directly, under ``torch.distributed.run`` or under ``srun``."""
import dataclasses
import os
import os.path as osp
import re
import shlex
import sys
from typing import List, Optional

from mmrskd.utils import MMRSKDError


@dataclasses.dataclass
class LaunchOptions:
    """The ``tools/sweep.py`` options of the same names (``master_port`` is
    ``--port``, ``extra_args`` ``--train-args``); ``gpus`` is the process
    count of a run; ``gpus_per_node`` (default ``min(gpus, 8)``),
    ``cpus_per_task``, ``partition`` and ``srun_args`` are for slurm."""
    launcher: str = 'none'
    gpus: int = 1
    gpus_per_node: Optional[int] = None
    cpus_per_task: int = 5
    partition: Optional[str] = None
    srun_args: str = ''
    master_port: int = 29500
    train_script: str = osp.join('tools', 'train.py')
    python: str = sys.executable
    extra_args: List[str] = dataclasses.field(default_factory=list)

    def check(self):
        """Refuse options that cannot start a run."""
        if self.gpus < 1:
            raise MMRSKDError(f'--gpus {self.gpus}: give at least 1')
        if self.launcher == 'slurm' and not self.partition:
            raise MMRSKDError('--launcher slurm needs --partition NAME (the '
                              'srun -p argument)')
        if self.launcher == 'none' and self.gpus > 1:
            raise MMRSKDError(f'--gpus {self.gpus} needs --launcher pytorch '
                              'or slurm; --launcher none trains one process')


def train_command(run, options: LaunchOptions,
                  resume: bool = False) -> List[str]:
    """argv that trains ``run`` (a ``SweepRun``) into its work dir, with
    ``--resume`` (from its ``last_checkpoint``) when ``resume``."""
    train_args = [options.train_script, run.config, '--work-dir',
                  run.work_dir, *(['--cfg-options', *run.option_args()]
                                  if run.cfg_options else []),
                  *(['--resume'] if resume else []), *options.extra_args]
    if options.launcher == 'none':
        return [options.python, *train_args]
    if options.launcher == 'pytorch':
        return [options.python, '-m', 'torch.distributed.run',
                '--nnodes=1', f'--nproc_per_node={options.gpus}',
                f'--master_port={options.master_port}', *train_args,
                '--launcher', 'pytorch']
    per_node = options.gpus_per_node or min(options.gpus, 8)
    return ['srun', '-p', options.partition,
            '--job-name=' + re.sub(r'[^\w.=,-]+', '_', run.name),
            f'--gres=gpu:{per_node}', f'--ntasks={options.gpus}',
            f'--ntasks-per-node={per_node}',
            f'--cpus-per-task={options.cpus_per_task}',
            '--kill-on-bad-exit=1', *shlex.split(options.srun_args),
            options.python, '-u', *train_args, '--launcher', 'slurm']


def train_env(options: LaunchOptions) -> dict:
    """The environment of a training process: the train script's repo
    importable, and ``OMP_NUM_THREADS=1`` unless set (thread counts change
    float reductions; two multi-thread runs on 2 cores ran 5x slower)."""
    repo = osp.dirname(osp.dirname(osp.abspath(options.train_script)))
    path = filter(None, (repo, os.environ.get('PYTHONPATH')))
    return {'OMP_NUM_THREADS': '1', **os.environ,
            'PYTHONPATH': os.pathsep.join(path)}
