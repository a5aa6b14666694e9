"""Student and teacher model configs of a distiller config."""
import copy

from mmengine.config import ConfigDict

from mmrskd.utils import MMRSKDError
from mmrskd.utils.config import load_config


def resolve_model_cfg(spec, role):
    """A detector config from a model dict, a config path or
    ``dict(cfg_path=..., **overrides)``.

    Returns:
        ConfigDict: the model config, with ``_scope_`` set to the default
        scope of the config file it came from so its unprefixed types
        resolve; ``overrides`` are merged in recursively.
    """
    overrides = {}
    if isinstance(spec, dict) and 'cfg_path' in spec:
        overrides = {k: v for k, v in spec.items() if k != 'cfg_path'}
        spec = spec['cfg_path']
    if isinstance(spec, str):
        cfg = load_config(spec, where=role)
        if 'model' not in cfg:
            raise MMRSKDError(f'{role}: {spec} has no "model" key')
        spec = cfg.model
        spec.setdefault('_scope_', cfg.get('default_scope', 'mmrskd'))
    if not isinstance(spec, dict) or 'type' not in spec:
        raise MMRSKDError(f'{role}: expected a model dict with "type", a '
                          f'config path or dict(cfg_path=...), got {spec!r}')
    # ConfigDict: mmdet heads read test_cfg by attribute.
    return ConfigDict(_merge(copy.deepcopy(dict(spec)), overrides))


def _merge(base, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(dict(base[key]), value)
        else:
            base[key] = value
    return base
