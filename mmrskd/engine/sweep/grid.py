"""Sweep grids: training configs × ``--cfg-options`` axes → named runs.

The sweep file format (:data:`SWEEP_KEYS`, read by mmengine's ``Config``),
how experiments share axes and overrides, and how runs are named are in
``docs/sweeps.md``, section 1. Values mean what they mean after
``--cfg-options KEY=VALUE``: each is written that way and parsed back with
mmengine's ``DictAction``.
"""
import dataclasses
import hashlib
import itertools
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config, DictAction

from mmrskd.utils import MMRSKDError
from mmrskd.utils.config import load_config

SWEEP_KEYS = ('configs', 'grid', 'cfg_options', 'experiments', 'metric',
              'work_dir')
EXPERIMENT_KEYS = SWEEP_KEYS[:3]


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One training run of a sweep: its ``name`` (stable across calls), the
    ``config`` as given, the ``(key, short name, value)`` of each grid axis,
    every override (axes and fixed ones) as ``--cfg-options`` parses them,
    and its own ``work_dir``."""
    name: str
    config: str
    axes: Tuple[Tuple[str, str, Any], ...]
    cfg_options: Dict[str, Any]
    work_dir: str

    @property
    def method(self) -> str:
        """The config stem, e.g. ``pkd_rotated-retinanet_..._dota``."""
        return config_stem(self.config)

    @property
    def axis_values(self) -> Dict[str, Any]:
        """``{short axis name: value}``."""
        return {short: value for _, short, value in self.axes}

    def option_args(self) -> List[str]:
        """``KEY=VALUE`` strings for ``tools/train.py --cfg-options``."""
        return [f'{key}={format_value(value, key)}'
                for key, value in self.cfg_options.items()]


@dataclasses.dataclass
class Sweep:
    """The expanded grid: runs in execution order."""
    runs: List[SweepRun]
    work_dir: str
    metric: Optional[str] = None


def config_stem(config: str) -> str:
    """``configs/pkd/pkd_x_dota.py`` → ``pkd_x_dota``."""
    return osp.splitext(osp.basename(config.split('::')[-1]))[0]


def format_value(value: Any, key: str = 'value') -> str:
    """Write ``value`` as ``--cfg-options`` takes it; refuse what it cannot
    carry (a dict, or a string that ``DictAction`` would split or strip)."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(format_value(v, key) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    if isinstance(value, dict):
        raise MMRSKDError(f'{key}: --cfg-options cannot take a dict value '
                          f'({value!r}); give one key per leaf, e.g. '
                          f'{key}.{next(iter(value), "name")}=...')
    if isinstance(value, str) and any(c in value for c in ',[]()"\' '):
        raise MMRSKDError(f'{key}: the value {value!r} has a character '
                          '--cfg-options splits or strips (, [ ] ( ) quotes '
                          'or space); put it in the config file instead')
    return repr(value) if isinstance(value, float) else str(value)


def normalize_value(value: Any, key: str) -> Any:
    """The value a run sees for ``KEY=value``: written and parsed back."""
    return DictAction._parse_iterable(format_value(value, key))


def name_value(value: Any) -> str:
    """A value as it appears in run names and directory names."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return format_value(value).replace('/', '%2F').replace('\\', '%5C')


def short_axis_names(keys: List[str]) -> Dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with.

    >>> short_axis_names(['model.a.loss_weight', 'randomness.seed'])
    {'model.a.loss_weight': 'loss_weight', 'randomness.seed': 'seed'}
    """
    names = {}
    for key in keys:
        parts = key.split('.')
        others = [k for k in keys if k != key]
        for length in range(1, len(parts) + 1):
            suffix = '.'.join(parts[-length:])
            if not any(k == suffix or k.endswith('.' + suffix)
                       for k in others):
                break
        names[key] = suffix
    return names


def _mapping(value, where: str, allowed=None) -> dict:
    """``value`` (None: empty) as a dict, checked against ``allowed`` keys.
    """
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise MMRSKDError(f'{where}: expected a mapping, got {value!r}')
    unknown = sorted(set(value) - set(allowed or value))
    if unknown:
        raise MMRSKDError(f'{where}: unknown keys {unknown}; it takes '
                          f'{", ".join(allowed)}')
    return dict(value)


def _axis(values, key: str) -> list:
    """An axis' values as the runs will see them; refuses repeats."""
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    normalized = [normalize_value(v, f'grid.{key}') for v in values]
    if len({name_value(v) for v in normalized}) != len(normalized):
        raise MMRSKDError(f'grid.{key}: repeated values {values!r}')
    return normalized


def _experiments(spec: dict, where: str):
    """``(configs, grid, cfg_options)`` of every experiment, the shared grid
    and overrides merged in."""
    spec = _mapping(spec, where, SWEEP_KEYS)
    shared_grid = _mapping(spec.get('grid'), f'{where}: grid')
    shared_options = _mapping(spec.get('cfg_options'), f'{where}: cfg_options')
    entries = [dict(configs=spec['configs'])] if spec.get('configs') else []
    for index, entry in enumerate(
            entries + list(spec.get('experiments') or [])):
        at = f'{where}: experiments[{index}]'
        entry = _mapping(entry, at, EXPERIMENT_KEYS)
        configs = entry.get('configs') or []
        grid = _mapping(entry.get('grid'), f'{at}.grid')
        for key, values in shared_grid.items():  # after the own axes
            grid.setdefault(key, values)
        options = dict(shared_options,
                       **_mapping(entry.get('cfg_options'),
                                  f'{at}.cfg_options'))
        yield ([configs] if isinstance(configs, str) else list(configs),
               {k: v for k, v in grid.items() if v is not None}, options)


def expand_grid(spec: dict, work_dir: str, where: str = 'sweep') -> Sweep:
    """Expand a sweep spec (the keys of a sweep file) into runs.

    Args:
        spec (dict): see :data:`SWEEP_KEYS` and the module doc.
        work_dir (str): the sweep's work dir; runs go below it.
        where (str): the spec's origin, for error messages.

    Returns:
        Sweep: the runs, configs in the given order, each crossed with the
        axes in grid order (the last axis varies fastest).
    """
    runs, seen = [], {}
    experiments = list(_experiments(spec, where))
    # over every experiment's axes, so that two experiments sweeping
    # a.loss_weight and b.loss_weight name their runs apart
    short = short_axis_names(list(dict.fromkeys(
        key for _, grid, _ in experiments for key in grid)))
    for configs, grid, options in experiments:
        axes = {key: _axis(values, key) for key, values in grid.items()}
        fixed = {key: normalize_value(value, f'cfg_options.{key}')
                 for key, value in options.items() if key not in axes}
        for config, combo in itertools.product(
                configs, itertools.product(*axes.values())):
            run_axes = tuple((key, short[key], value)
                             for key, value in zip(axes, combo))
            name = config_stem(config)
            if run_axes:
                name += '/' + ','.join(f'{s}={name_value(v)}'
                                       for _, s, v in run_axes)
            if name in seen:
                raise MMRSKDError(
                    f'{where}: run "{name}" comes from {seen[name]} and '
                    f'{config}; rename a config or drop the duplicate')
            seen[name] = config
            runs.append(SweepRun(
                name, config, run_axes,
                dict(fixed, **{k: v for k, _, v in run_axes}),
                osp.join(work_dir, name)))
    # a run without axes would hold the work dirs of its siblings with axes
    for name in seen:
        if '/' not in name and any(n.startswith(name + '/') for n in seen):
            raise MMRSKDError(
                f'{where}: {seen[name]} runs once without axes and again with '
                'axes in another experiment; give both experiments the same '
                'axes (e.g. randomness.seed: [0])')
    if not runs:
        raise MMRSKDError(f'{where}: no runs; give configs: [...] or '
                          'experiments: [dict(configs=[...])], and no empty '
                          'grid axis')
    return Sweep(runs, work_dir, spec.get('metric'))


def load_sweep_file(path: str, work_dir: Optional[str] = None) -> Sweep:
    """Read and expand a sweep file; ``work_dir`` overrides the file's,
    whose default is ``work_dirs/sweeps/<file stem>``."""
    if not osp.isfile(path):
        raise MMRSKDError(f'sweep file not found: {osp.abspath(path)}')
    spec = Config.fromfile(path).to_dict()
    work_dir = work_dir or spec.get('work_dir') or osp.join(
        'work_dirs', 'sweeps', config_stem(path))
    return expand_grid(spec, work_dir, where=path)


def is_sweep_file(path: str) -> bool:
    """YAML files are sweep files; Python/JSON ones when they have no
    ``model`` but ``configs`` or ``experiments``."""
    if path.endswith(('.yml', '.yaml')):
        return True
    if not osp.isfile(path):
        return False
    keys = set(Config.fromfile(path).keys())
    return 'model' not in keys and bool(keys & {'configs', 'experiments'})


def run_fingerprint(run: SweepRun) -> str:
    """sha256 of the run's resolved config (``_base_`` merged, overrides
    applied): a finished run is reused only while this is unchanged.

    Configs named by path inside it (a distiller's student/teacher) are
    compared by path, not content.
    """
    cfg = load_config(run.config, where=f'{run.name}: config')
    cfg.merge_from_dict(run.cfg_options)
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
