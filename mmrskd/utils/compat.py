"""Every upstream workaround mmrskd needs, in one place.

Nothing else in mmrskd patches mmdet, mmrotate, mmengine or torch. Each fix is
idempotent and proved by ``tests/test_utils/test_compat*.py``:

* mmrotate 1.0.0rc1 asserts ``mmdet <= 3.1.0`` at import time, while the only
  mmdet that accepts mmcv 2.1.0 (which builds against torch 2.x) is newer.
  :func:`import_mmrotate` presents a 3.1.0 version string for the duration of
  the first ``import mmrotate`` and restores the real one afterwards.
* mmrotate 1.0.0rc1 does ``from collections import Sequence``, removed in
  Python 3.10; :func:`import_mmrotate` aliases it to ``collections.abc``.
* mmrotate's mAP (``DOTAMetric``) runs in a ``spawn`` process pool whose
  workers import mmrotate afresh and hit the same assert unless their main
  script imported mmrskd (pytest, notebooks and ``python -c`` don't; the
  pool then hangs). :func:`start_mmrotate_workers_through_compat` gives that
  pool an initializer that imports mmrotate through this module.
* mmengine's pytorch launcher calls ``torch.cuda.set_device`` and wraps the
  model in DDP with ``device_ids=[LOCAL_RANK]``, both of which fail for CPU
  processes (gloo). :func:`allow_cpu_distributed` skips the device pinning
  when there is no GPU and drops ``device_ids`` for CPU modules, so
  ``tools/dist_train.sh CONFIG 2`` runs on a CPU machine.
* ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``
  (every mmdet/mmrotate R50 config) makes mmengine import torchvision just
  to look up the weight URL, and torchvision has no CPU build that loads
  against this torch. :func:`resolve_torchvision_urls_without_torchvision`
  reads the same URL table mmengine ships (``hub/torchvision_0.12.json``).
* torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine's own
  checkpoints carry numpy arrays and ``HistoryBuffer`` objects (with bound
  statistics methods pickled through ``getattr``), so ``--resume`` fails.
  :func:`register_checkpoint_safe_globals` allow-lists exactly those types,
  with a ``getattr`` that only resolves ``HistoryBuffer`` statistics methods,
  instead of turning ``weights_only`` off.
* mmcv's CPU deformable convolutions (DCN, DCNv2) have no bf16 kernel, so
  ``--amp`` on the CPU failed on them:
  :func:`run_cpu_deform_convs_in_fp32_under_autocast`.
* mmcv's CPU ``box_iou_rotated`` costs about 1 µs for every box pair, most
  of a Rotated RetinaNet step on the CPU:
  :func:`skip_disjoint_pairs_in_rotated_iou` makes mmrotate's
  ``RBboxOverlaps2D`` skip the pairs that cannot overlap (same values).
"""
import collections
import collections.abc
import importlib
import multiprocessing
import sys

import numpy as np
import torch

from mmrskd.utils.checkpoint import load_from_local_safely
from mmrskd.utils.errors import MMRSKDError

MMROTATE_ACCEPTED_MMDET_VERSION = '3.1.0'
MMROTATE_SUBPACKAGES = ('datasets', 'evaluation', 'models', 'structures',
                        'visualization')

_patched = False


def _alias_collections_sequence():
    # mmrotate/models/detectors/refine_single_stage.py imports it; the alias
    # stays because mmengine imports registry locations lazily.
    if not hasattr(collections, 'Sequence'):
        collections.Sequence = collections.abc.Sequence


def import_mmrotate():
    """Import mmrotate and all its registering subpackages on mmdet 3.3.

    Returns:
        module: the ``mmrotate`` package.
    """
    _alias_collections_sequence()
    if 'mmrotate' in sys.modules and 'mmrotate.models' in sys.modules:
        return sys.modules['mmrotate']
    import mmdet
    real_version = mmdet.__version__
    mmdet.__version__ = MMROTATE_ACCEPTED_MMDET_VERSION
    try:
        mmrotate = importlib.import_module('mmrotate')
        for name in MMROTATE_SUBPACKAGES:
            importlib.import_module(f'mmrotate.{name}')
    finally:
        mmdet.__version__ = real_version
    return mmrotate


class _CompatPoolContext:
    """A multiprocessing context whose pools import mmrotate through
    :func:`import_mmrotate` in every worker before any task."""

    def __init__(self, method=None):
        self._context = multiprocessing.get_context(method)

    def Pool(self, processes=None, **kwargs):  # noqa: N802 (stdlib name)
        return self._context.Pool(processes, initializer=import_mmrotate,
                                  **kwargs)


def start_mmrotate_workers_through_compat():
    """Route mmrotate's mAP worker pool through :class:`_CompatPoolContext`."""
    from mmrotate.evaluation.functional import mean_ap
    mean_ap.get_context = _CompatPoolContext


def allow_cpu_distributed():
    """Let mmengine's launcher and DDP wrapper run CPU-only processes."""
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    init_with_gpu = dist_utils._init_dist_pytorch
    if getattr(init_with_gpu, 'allows_cpu', False):
        return

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return init_with_gpu(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend=backend, **kwargs)

    init_dist_pytorch.allows_cpu = True
    dist_utils._init_dist_pytorch = init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__

    def ddp_init_for_any_device(self, module, detect_anomalous_params=False,
                                **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs['device_ids'] = None
        ddp_init(self, module, detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = ddp_init_for_any_device


def resolve_torchvision_urls_without_torchvision():
    """Serve ``torchvision://NAME`` from mmengine's URL table."""
    import os.path as osp

    import mmengine
    from mmengine.runner import checkpoint

    table = mmengine.load(
        osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))

    def load_from_torchvision(filename, map_location=None):
        name = filename.split('://', 1)[1]
        if name not in table:
            raise MMRSKDError(f'{filename}: unknown torchvision model; known: '
                              f'{", ".join(sorted(table))}')
        return checkpoint.load_from_http(table[name],
                                         map_location=map_location)

    checkpoint.CheckpointLoader.register_scheme(
        prefixes=('torchvision://', 'modelzoo://'),
        loader=load_from_torchvision, force=True)


class _HistoryBufferMethodGetter:
    """Stand-in for ``builtins.getattr`` while unpickling checkpoints.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as
    ``getattr(HistoryBuffer, 'mean')``. A real ``getattr`` in the allow-list
    would let a crafted checkpoint walk to ``os.system``, so this resolves only
    registered statistics methods of ``HistoryBuffer`` and refuses the rest.
    """

    def __call__(self, obj, name):
        from mmengine.logging import HistoryBuffer
        if obj is HistoryBuffer and self.is_statistics_method(name):
            return getattr(obj, name)
        raise torch.serialization.pickle.UnpicklingError(
            f'checkpoint calls getattr({obj!r}, {name!r}); only HistoryBuffer '
            'statistics methods may be resolved while loading weights')

    @staticmethod
    def is_statistics_method(name):
        from mmengine.logging import HistoryBuffer

        # _statistics_methods fills on first use, so a fresh process also
        # accepts the public methods HistoryBuffer defines itself.
        own = vars(HistoryBuffer).get(name)
        return name in HistoryBuffer._statistics_methods or (
            not name.startswith('_') and callable(own))


def checkpoint_safe_globals():
    """The allow-list of globals an mmengine/mmdet checkpoint may reference.

    Returns:
        list: entries for :func:`torch.serialization.add_safe_globals`.
    """
    from mmengine.logging import HistoryBuffer
    numeric_dtypes = [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG']
    return [
        HistoryBuffer,
        (_HistoryBufferMethodGetter(), 'builtins.getattr'),
        np.ndarray,
        np.dtype,
        *numeric_dtypes,
        (np._core.multiarray._reconstruct,
         'numpy._core.multiarray._reconstruct'),
        (np._core.multiarray.scalar, 'numpy._core.multiarray.scalar'),
        # checkpoints written under numpy 1.x name the same functions here
        (np._core.multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (np._core.multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ]


def register_checkpoint_safe_globals():
    """Extend torch's weights-only allow-list for mmengine checkpoints."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def route_local_checkpoints_through_safe_loader():
    """Make mmengine load local checkpoints with mmrskd's safe loader, so a
    refused file gets a one-line error instead of a pickle traceback."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safely, force=True)


def run_cpu_deform_convs_in_fp32_under_autocast():
    """mmcv's CPU deformable convolutions (DCN, DCNv2) have no bf16 kernel,
    so ``--amp`` on the CPU failed on them; under CPU autocast they now get
    fp32 inputs and run in fp32, as autocast does for torch's own ops
    without a low-precision kernel. CUDA is left as it is."""
    from mmcv.ops.deform_conv import DeformConv2dFunction
    from mmcv.ops.modulated_deform_conv import ModulatedDeformConv2dFunction
    for function in (DeformConv2dFunction, ModulatedDeformConv2dFunction):
        function.forward = staticmethod(torch.amp.custom_fwd(
            function.forward, device_type='cpu', cast_inputs=torch.float32))
        function.backward = staticmethod(torch.amp.custom_bwd(
            function.backward, device_type='cpu'))


def _rbbox_overlaps_of_meeting_pairs(self, bboxes1, bboxes2, mode='iou',
                                     is_aligned=False):
    """``RBboxOverlaps2D.__call__`` that sends only the pairs whose
    axis-aligned hulls meet to the kernel (the others are 0, as the kernel
    returns for them)."""
    from mmdet.structures.bbox import get_box_tensor
    from mmrotate.structures.bbox import rbbox_overlaps, rbox2hbox
    bboxes1 = get_box_tensor(bboxes1)[..., :5]
    bboxes2 = get_box_tensor(bboxes2)[..., :5]
    if is_aligned or bboxes1.numel() == 0 or bboxes2.numel() == 0:
        return rbbox_overlaps(bboxes1, bboxes2, mode, is_aligned)
    with torch.no_grad():
        # the hulls of the boxes as the kernel sees them (sides >= 1e-3)
        hull1, hull2 = (rbox2hbox(torch.cat(
            [boxes[:, :2], boxes[:, 2:4].clamp(min=1e-3), boxes[:, 4:5]],
            dim=1)) for boxes in (bboxes1, bboxes2))
        meet = ((hull1[:, None, :2] <= hull2[None, :, 2:]) &
                (hull2[None, :, :2] <= hull1[:, None, 2:])).all(-1)
        rows, cols = meet.nonzero(as_tuple=True)
    overlaps = bboxes1.new_zeros((len(bboxes1), len(bboxes2)))
    if len(rows):
        overlaps[rows, cols] = rbbox_overlaps(
            bboxes1[rows], bboxes2[cols], mode, is_aligned=True).to(
                overlaps.dtype)
    return overlaps


def skip_disjoint_pairs_in_rotated_iou():
    """mmcv's CPU ``box_iou_rotated`` spends about 1 µs on every pair, and
    an anchor-to-GT matrix is mostly pairs that cannot overlap: mmrotate's
    ``RBboxOverlaps2D`` took 80% of a 256-px Rotated RetinaNet training
    step on the CPU. It now gives the kernel only the pairs whose
    axis-aligned hulls meet: the same values, about 10x faster there."""
    from mmrotate.models.task_modules.assigners import RBboxOverlaps2D
    RBboxOverlaps2D.__call__ = _rbbox_overlaps_of_meeting_pairs


def apply_all():
    """Apply every workaround once; safe to call repeatedly."""
    global _patched
    if _patched:
        return
    import_mmrotate()
    start_mmrotate_workers_through_compat()
    allow_cpu_distributed()
    resolve_torchvision_urls_without_torchvision()
    register_checkpoint_safe_globals()
    route_local_checkpoints_through_safe_loader()
    run_cpu_deform_convs_in_fp32_under_autocast()
    skip_disjoint_pairs_in_rotated_iou()
    _patched = True
