"""The one checkpoint loader of mmrskd: weights-only with an allow-list.

A checkpoint is untrusted input: ``torch.load(weights_only=False)`` runs any
pickle payload inside it. Everything mmrskd loads (``--resume``, ``load_from``,
teacher checkpoints, converters) goes through :func:`safe_load`, which
mmengine also uses for local files once :mod:`mmrskd.utils.compat` is applied.

Files that need arbitrary unpickling (very old checkpoints with pickled
configs) load only with an explicit opt-in, ``trust=True`` or the environment
variable ``MMRSKD_TRUST_CHECKPOINTS=1`` (``tools/train.py --trust-checkpoint``
sets it); it warns each time.
"""
import os
import os.path as osp
import pickle
import warnings

import torch

from mmrskd.utils.errors import MMRSKDError

TRUST_ENV_VAR = 'MMRSKD_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(MMRSKDError):
    """A checkpoint references a global outside the weights-only allow-list."""


def trust_requested(trust=False):
    return trust or os.environ.get(TRUST_ENV_VAR, '0') == '1'


_TORCH_BOILERPLATE = ('Weights only load failed', 'Please file an issue',
                      'Check the documentation')


def _reason(error):
    """The specific line of torch's multi-line weights-only error."""
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines
             if line and not line.startswith(_TORCH_BOILERPLATE)]
    return ' '.join(lines) or 'not weights-only'


def safe_load(filename, map_location='cpu', trust=False):
    """Load a checkpoint file without executing pickled code.

    Args:
        filename (str | file-like): local path or open binary file.
        map_location: as in :func:`torch.load`.
        trust (bool): unpickle anything. Only for files you made yourself.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: the path does not exist.
        UnsafeCheckpointError: the file needs a global outside the allow-list.
    """
    if isinstance(filename, (str, os.PathLike)):
        filename = osp.expanduser(os.fspath(filename))
        if not osp.isfile(filename):
            raise FileNotFoundError(f'checkpoint not found: {filename}')
    if trust_requested(trust):
        warnings.warn(f'loading {filename} with weights_only=False: any code '
                      'pickled in it runs. Only do this for trusted files.')
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'{filename}: refused to unpickle ({_reason(err)}). mmrskd loads '
            'checkpoints weights-only; if you made this file yourself, retry '
            f'with --trust-checkpoint or {TRUST_ENV_VAR}=1') from None


def load_from_local_safely(filename, map_location):
    """mmengine ``CheckpointLoader`` scheme for local paths."""
    return safe_load(filename, map_location=map_location)


def atomic_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename, so
    a crash never leaves a truncated file at ``path``."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def student_checkpoint(checkpoint):
    """The plain student checkpoint inside a distiller checkpoint.

    Keeps ``student.*`` weights without the prefix and the dataset meta; drops
    connectors, distillation-loss modules, schedule states, optimizer and
    message hub.

    Args:
        checkpoint (dict): as loaded by :func:`safe_load`.

    Returns:
        dict: ``dict(state_dict=..., meta=...)`` loadable by the student's
        own config in stock mmdet/mmrotate tools.
    """
    state = checkpoint.get('state_dict', checkpoint)
    student = {k[len('student.'):]: v for k, v in state.items()
               if k.startswith('student.')}
    if not student:
        raise MMRSKDError('no "student." weights in this checkpoint: it is '
                          'not a distiller checkpoint')
    meta = {k: v for k, v in checkpoint.get('meta', {}).items()
            if k in ('dataset_meta', 'epoch', 'iter', 'seed',
                     'experiment_name', 'mmengine_version')}
    return dict(state_dict=student, meta=meta)
