"""The one checkpoint loader of mmrskd: weights-only with an allow-list.

A checkpoint is untrusted input: ``torch.load(weights_only=False)`` runs any
pickle payload inside it. Everything mmrskd loads (``--resume``, ``load_from``,
teacher checkpoints, converters) goes through :func:`safe_load`, which
mmengine also uses for local files once :mod:`mmrskd.utils.compat` is applied.

Files that need arbitrary unpickling (very old checkpoints with pickled
configs) load only with an explicit opt-in, ``trust=True`` or the environment
variable ``MMRSKD_TRUST_CHECKPOINTS=1`` (``tools/train.py --trust-checkpoint``
sets it); it warns each time.

Before unpickling, the zip archive of a checkpoint is checked (central
directory and the CRC-32 of every member): torch itself reads truncated
tails and flipped bits in tensor data without complaint. Such files raise
:class:`CorruptCheckpointError`. Writers use :func:`atomic_write_bytes` (and
:class:`AtomicLocalBackend` for mmengine's checkpoint hook), so a crash never
leaves a half-written file under the final name.
"""
import os
import os.path as osp
import pickle
import warnings
import zipfile

import torch
from mmengine.fileio import LocalBackend

from mmrskd.utils.errors import MMRSKDError

TRUST_ENV_VAR = 'MMRSKD_TRUST_CHECKPOINTS'
# checkpoint meta worth keeping in a released (student-only) checkpoint
RELEASE_META = ('dataset_meta', 'epoch', 'iter', 'seed', 'experiment_name',
                'mmengine_version')
_ZIP_MAGIC = b'PK\x03\x04'


class UnsafeCheckpointError(MMRSKDError):
    """A checkpoint references a global outside the weights-only allow-list."""


class CorruptCheckpointError(MMRSKDError):
    """A checkpoint file is truncated, empty or fails its CRC check."""


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


def check_archive(filename):
    """Check the zip container of a checkpoint: central directory present and
    every member's CRC-32 correct. Legacy (pre-zip) files are not checked.

    Args:
        filename (str | file-like): local path or seekable binary file.

    Raises:
        CorruptCheckpointError: the archive is truncated or corrupt.
    """
    start = None if isinstance(filename, str) else filename.tell()
    try:
        # the local-file magic: a truncated zip has no end record, so
        # zipfile.is_zipfile would call it "not a zip"
        if isinstance(filename, str):
            with open(filename, 'rb') as f:
                magic = f.read(len(_ZIP_MAGIC))
        else:
            magic = filename.read(len(_ZIP_MAGIC))
        if magic != _ZIP_MAGIC:
            return
        with zipfile.ZipFile(filename) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CorruptCheckpointError(
            f'{filename}: truncated or corrupt checkpoint ({err}); use an '
            'earlier checkpoint') from None
    finally:
        if start is not None:
            filename.seek(start)
    if bad_member is not None:
        raise CorruptCheckpointError(
            f'{filename}: member {bad_member} fails its CRC check (corrupt '
            'file); use an earlier checkpoint')


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
        CorruptCheckpointError: the file is empty, truncated or corrupt.
        UnsafeCheckpointError: the file needs a global outside the allow-list.
    """
    if isinstance(filename, (str, os.PathLike)):
        filename = osp.expanduser(os.fspath(filename))
        if not osp.isfile(filename):
            raise FileNotFoundError(f'checkpoint not found: {filename}')
    check_archive(filename)
    trusted = trust_requested(trust)
    if trusted:
        warnings.warn(f'loading {filename} with weights_only=False: any code '
                      'pickled in it runs. Only do this for trusted files.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=not trusted)
    except pickle.UnpicklingError as err:
        if trusted:
            raise CorruptCheckpointError(
                f'{filename}: corrupt checkpoint ({_reason(err)})') from None
        raise UnsafeCheckpointError(
            f'{filename}: refused to unpickle ({_reason(err)}). mmrskd loads '
            'checkpoints weights-only; if you made this file yourself, retry '
            f'with --trust-checkpoint or {TRUST_ENV_VAR}=1') from None
    except EOFError:
        # an empty file (not a zip archive, so not checked above)
        raise CorruptCheckpointError(
            f'{filename}: empty or truncated checkpoint; use an earlier '
            'checkpoint') from None


def load_from_local_safely(filename, map_location):
    """mmengine ``CheckpointLoader`` scheme for local paths."""
    return safe_load(filename, map_location=map_location)


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (a no-op where folders cannot be
    opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, write):
    """Call ``write(f)`` on a temporary file next to ``path``, fsync it, then
    rename it to ``path``: readers see the old file or the complete new one.
    The temporary file is hidden (``.NAME.tmp-PID``) and removed on errors;
    one left by a killed process is never read as a checkpoint."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    _fsync_folder(folder)


def atomic_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename, so
    a crash never leaves a truncated file at ``path``."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data, path):
    """Write ``data`` (bytes) to ``path`` atomically, see :func:`atomic_save`.
    """
    _atomic_write(path, lambda f: f.write(data))


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put``/``put_text``.

    :class:`~mmrskd.engine.hooks.AtomicCheckpointHook` selects it by name, so
    regular, best and ``last_checkpoint`` files are written through a
    temporary file and a rename.
    """

    def put(self, obj, filepath):
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write_bytes(obj.encode(encoding), filepath)


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
            if k in RELEASE_META}
    return dict(state_dict=student, meta=meta)
