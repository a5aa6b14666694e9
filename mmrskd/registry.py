"""mmrskd registries.

Each is a child of mmrotate's registry of the same kind (which are children
of mmengine's root registries), and falls back to mmdet's: an unprefixed type
resolves through mmrskd → mmrotate → mmengine → mmdet. The fallback matters
because mmdet code builds its own defaults unprefixed (``MaxIoUAssigner``
builds ``dict(type='BboxOverlaps2D')``) under whatever the default scope is,
so horizontal mmdet detectors build under ``default_scope='mmrskd'``. Configs
may still name the scope explicitly (``type='mmdet.RetinaNet'``,
``type='mmrotate.DOTADataset'``), as mmrotate's own configs do.

``locations`` lets mmengine import the registering modules lazily when a
config with ``default_scope='mmrskd'`` is built.

This module is the bottom layer of mmrskd and imports none of it: mmrotate
is importable here because ``mmrskd/__init__.py``, which Python runs before
any submodule, has applied :mod:`mmrskd.utils.compat`.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import Registry
from mmrotate import registry as mmrotate_registry


class FallbackRegistry(Registry):
    """A registry that, after its own parent chain, looks up ``fallback``.

    Args:
        name (str): registry name.
        parent (Registry): the parent registry.
        location (str): module that registers into it.
        fallback (Registry | None): searched for unprefixed keys not found
            in the chain.
    """

    def __init__(self, name, parent, location, fallback=None):
        super().__init__(name, parent=parent, locations=[location])
        self.fallback = fallback

    def get(self, key):
        obj = super().get(key)
        if obj is None and self.fallback is not None and isinstance(
                key, str) and '.' not in key:
            obj = self.fallback.get(key)
        return obj


def _child(kind, location, name=None):
    """Registry ``kind`` (attribute name in mmrotate/mmdet registry)."""
    return FallbackRegistry(
        name or kind.lower().replace('_', ' '),
        parent=getattr(mmrotate_registry, kind),
        location=location,
        fallback=getattr(mmdet_registry, kind, None))


RUNNERS = _child('RUNNERS', 'mmrskd.engine', 'runner')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS', 'mmrskd.engine')
LOOPS = _child('LOOPS', 'mmrskd.engine', 'loop')
HOOKS = _child('HOOKS', 'mmrskd.engine.hooks', 'hook')
DATASETS = _child('DATASETS', 'mmrskd.datasets', 'dataset')
DATA_SAMPLERS = _child('DATA_SAMPLERS', 'mmrskd.datasets')
TRANSFORMS = _child('TRANSFORMS', 'mmrskd.datasets', 'transform')
MODELS = _child('MODELS', 'mmrskd.models', 'model')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS', 'mmrskd.models', 'model_wrapper')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS', 'mmrskd.models')
OPTIMIZERS = _child('OPTIMIZERS', 'mmrskd.engine', 'optimizer')
# mmrotate 1.0.0rc1 has no optim-wrapper registry of its own.
OPTIM_WRAPPERS = FallbackRegistry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, location='mmrskd.engine',
    fallback=mmdet_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS',
                                    'mmrskd.engine')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS', 'mmrskd.engine')
METRICS = _child('METRICS', 'mmrskd.evaluation', 'metric')
TASK_UTILS = _child('TASK_UTILS', 'mmrskd.models', 'task util')
VISUALIZERS = _child('VISUALIZERS', 'mmrskd.visualization', 'visualizer')
VISBACKENDS = _child('VISBACKENDS', 'mmrskd.visualization', 'vis_backend')
LOG_PROCESSORS = _child('LOG_PROCESSORS', 'mmrskd.engine', 'log_processor')
