"""The command that trains one sweep run: ``tools/train.py`` directly, under
``torch.distributed.run`` or under ``srun``, as OpenMMLab's
``dist_train.sh``/``slurm_train.sh`` start it."""
import dataclasses
import os.path as osp
import re
import shlex
import sys
from typing import List, Optional

from mmrskd.utils import MMRSKDError

LAUNCHERS = ('none', 'pytorch', 'slurm')


@dataclasses.dataclass
class LaunchOptions:
    """How runs are started.

    Attributes:
        launcher (str): ``'none'`` (one process), ``'pytorch'``
            (``python -m torch.distributed.run``) or ``'slurm'`` (``srun``).
        gpus (int): processes per run: GPUs, or CPU processes with gloo.
        gpus_per_node (int, optional): slurm only; default ``min(gpus, 8)``.
        cpus_per_task (int): slurm only.
        partition (str, optional): slurm partition (required for slurm).
        srun_args (str): extra ``srun`` arguments, shell-quoted.
        master_port (int): pytorch only.
        train_script (str): path of ``tools/train.py``.
        python (str): interpreter.
        extra_args (list[str]): more ``tools/train.py`` arguments.
    """
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
        if self.launcher not in LAUNCHERS:
            raise MMRSKDError(f'--launcher {self.launcher}: choose one of '
                              f'{", ".join(LAUNCHERS)}')
        if self.gpus < 1:
            raise MMRSKDError(f'--gpus {self.gpus}: give at least 1')
        if self.launcher == 'slurm' and not self.partition:
            raise MMRSKDError('--launcher slurm needs --partition NAME (the '
                              'srun -p argument)')
        if self.launcher == 'none' and self.gpus > 1:
            raise MMRSKDError(f'--gpus {self.gpus} needs --launcher pytorch '
                              'or slurm; --launcher none trains one process')


def job_name(run_name: str) -> str:
    """A slurm job name for a run name."""
    return re.sub(r'[^\w.=,-]+', '_', run_name)


def train_command(run, options: LaunchOptions,
                  resume: bool = False) -> List[str]:
    """argv that trains ``run`` into its work dir.

    Args:
        run (SweepRun): the run.
        options (LaunchOptions): launcher settings.
        resume (bool): add ``--resume`` (from the work dir's
            ``last_checkpoint``).
    """
    train_args = [options.train_script, run.config, '--work-dir',
                  run.work_dir]
    if run.cfg_options:
        train_args += ['--cfg-options', *run.option_args()]
    if resume:
        train_args.append('--resume')
    train_args += list(options.extra_args)

    if options.launcher == 'none':
        return [options.python, *train_args]
    if options.launcher == 'pytorch':
        return [options.python, '-m', 'torch.distributed.run',
                '--nnodes=1', f'--nproc_per_node={options.gpus}',
                f'--master_port={options.master_port}', *train_args,
                '--launcher', 'pytorch']
    per_node = options.gpus_per_node or min(options.gpus, 8)
    return ['srun', '-p', options.partition,
            f'--job-name={job_name(run.name)}', f'--gres=gpu:{per_node}',
            f'--ntasks={options.gpus}', f'--ntasks-per-node={per_node}',
            f'--cpus-per-task={options.cpus_per_task}',
            '--kill-on-bad-exit=1', *shlex.split(options.srun_args),
            options.python, '-u', *train_args, '--launcher', 'slurm']
