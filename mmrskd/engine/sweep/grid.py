"""Sweep grids: training configs × ``--cfg-options`` axes → named runs.

A sweep file is read with mmengine's ``Config`` (YAML or Python, ``_base_``
allowed)::

    # sweeps/pkd_weight.yml
    grid:                              # axes of every experiment
      randomness.seed: [0, 1]
    cfg_options:                       # overrides of every run
      train_cfg.max_epochs: 12
    experiments:                       # configs with their own axes
      - configs: [configs/demo/pkd_..._synthetic-dota.py]
        grid: {model.distill_losses.loss_pkd.loss_weight: [1, 2]}
        cfg_options: {model.teacher_ckpt: work_dirs/teacher/epoch_12.pth}
      - configs: [configs/demo/rotated-retinanet_r18-w16_..._dota.py]
    metric: dota/mAP                   # optional: the metric to report
    work_dir: work_dirs/sweeps/pkd     # optional

Top-level ``configs`` form one more experiment (listed first). Every
experiment gets the top-level ``grid`` and ``cfg_options``; its own entries
win for the same key, its own axes come first, and an axis set to
``null``/None in its grid is dropped there. Values mean exactly what they
mean after ``--cfg-options KEY=VALUE``: each is written that way, parsed back
with mmengine's ``DictAction`` and must survive the round trip.

A run is named ``<config stem>/<axis>=<value>,...`` where ``<axis>`` is the
shortest dotted suffix of the key that tells the axes apart
(``loss_weight=2,seed=1``), or ``<config stem>`` without axes; its work dir
is ``<sweep work_dir>/<name>``.
"""
import dataclasses
import hashlib
import itertools
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmrskd.utils import MMRSKDError
from mmrskd.utils.config import load_config

SWEEP_KEYS = ('configs', 'grid', 'cfg_options', 'experiments', 'metric',
              'work_dir')
EXPERIMENT_KEYS = ('configs', 'grid', 'cfg_options')
_UNSAFE_IN_NAMES = {'/': '%2F', ' ': '', '\\': '%5C'}


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One training run of a sweep.

    Attributes:
        name (str): ``<config stem>/<axis>=<value>,...`` (or the stem alone
            without axes); unique in the sweep and stable across calls.
        config (str): the training config, as given.
        axes (tuple[tuple[str, str, Any]]): ``(key, short name, value)`` of
            each grid axis, in grid order.
        cfg_options (dict[str, Any]): every override of the run (axes and
            fixed ones), as ``--cfg-options`` will parse them.
        work_dir (str): the run's own work dir.
    """
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

    def to_dict(self) -> dict:
        return dict(name=self.name, config=self.config,
                    axes=[list(axis) for axis in self.axes],
                    cfg_options=self.cfg_options, work_dir=self.work_dir)

    @classmethod
    def from_dict(cls, record: dict) -> 'SweepRun':
        return cls(record['name'], record['config'],
                   tuple(tuple(axis) for axis in record['axes']),
                   dict(record['cfg_options']), record['work_dir'])


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
    """Write ``value`` as ``--cfg-options`` takes it.

    Raises:
        MMRSKDError: ``value`` cannot be written there (a dict, or a string
            that DictAction would split or strip).
    """
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


def parse_value(text: str) -> Any:
    """Parse a value as ``--cfg-options`` does."""
    from mmengine.config import DictAction
    return DictAction._parse_iterable(text)


def normalize_value(value: Any, key: str) -> Any:
    """The value a run sees for ``KEY=value``: written and parsed back."""
    return parse_value(format_value(value, key))


def name_value(value: Any) -> str:
    """A value as it appears in run names and directory names."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = format_value(value)
    for char, replacement in _UNSAFE_IN_NAMES.items():
        text = text.replace(char, replacement)
    return text


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


def _as_mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MMRSKDError(f'{where}: expected a mapping of config keys to '
                          f'values, got {value!r}')
    return dict(value)


def _as_axis(values, key):
    if isinstance(values, tuple):
        values = list(values)
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise MMRSKDError(f'grid.{key}: an axis needs at least one value')
    normalized = [normalize_value(v, f'grid.{key}') for v in values]
    shown = [name_value(v) for v in normalized]
    if len(set(shown)) != len(shown):
        raise MMRSKDError(f'grid.{key}: repeated values {values!r}')
    return normalized


def _experiments(spec, where):
    unknown = set(spec) - set(SWEEP_KEYS)
    if unknown:
        raise MMRSKDError(f'{where}: unknown keys {sorted(unknown)}; a sweep '
                          f'file takes {", ".join(SWEEP_KEYS)}')
    common_grid = _as_mapping(spec.get('grid'), f'{where}: grid')
    common_options = _as_mapping(spec.get('cfg_options'),
                                 f'{where}: cfg_options')
    entries = []
    if spec.get('configs'):
        entries.append(dict(configs=spec['configs']))
    extra = spec.get('experiments') or []
    if not isinstance(extra, (list, tuple)):
        raise MMRSKDError(f'{where}: experiments must be a list of '
                          'dict(configs=..., grid=..., cfg_options=...)')
    entries += list(extra)
    if not entries:
        raise MMRSKDError(f'{where}: no configs; add configs: [...] or '
                          'experiments: [dict(configs=[...])]')
    for index, entry in enumerate(entries):
        entry_where = f'{where}: experiments[{index}]'
        if not isinstance(entry, dict):
            raise MMRSKDError(f'{entry_where}: expected a mapping')
        unknown = set(entry) - set(EXPERIMENT_KEYS)
        if unknown:
            raise MMRSKDError(f'{entry_where}: unknown keys '
                              f'{sorted(unknown)}; an experiment takes '
                              f'{", ".join(EXPERIMENT_KEYS)}')
        configs = entry.get('configs')
        if isinstance(configs, str):
            configs = [configs]
        if not configs:
            raise MMRSKDError(f'{entry_where}: configs is empty')
        # own axes first, shared ones (typically the seed) last; an
        # experiment drops a shared axis by setting it to null/None
        grid = _as_mapping(entry.get('grid'), f'{entry_where}.grid')
        for key, values in common_grid.items():
            grid.setdefault(key, values)
        grid = {k: v for k, v in grid.items() if v is not None}
        options = dict(common_options)
        options.update(_as_mapping(entry.get('cfg_options'),
                                   f'{entry_where}.cfg_options'))
        yield list(configs), grid, options


def expand_grid(spec: dict, work_dir: str, where: str = 'sweep') -> Sweep:
    """Expand a sweep spec (the keys of a sweep file) into runs.

    Args:
        spec (dict): ``configs``, ``grid``, ``cfg_options``, ``experiments``,
            ``metric`` (see the module doc).
        work_dir (str): the sweep's work dir; runs go below it.
        where (str): the spec's origin, for error messages.

    Returns:
        Sweep: the runs, configs in the given order, each crossed with the
        axes in grid order (the last axis varies fastest).
    """
    runs, seen = [], {}
    for configs, grid, options in _experiments(spec, where):
        axes = {key: _as_axis(values, key) for key, values in grid.items()}
        fixed = {key: normalize_value(value, f'cfg_options.{key}')
                 for key, value in options.items() if key not in axes}
        short = short_axis_names(list(axes))
        for config in configs:
            for combo in itertools.product(*axes.values()):
                run_axes = tuple(
                    (key, short[key], value)
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
                cfg_options = dict(fixed)
                cfg_options.update({k: v for k, _, v in run_axes})
                runs.append(SweepRun(name, config, run_axes, cfg_options,
                                     osp.join(work_dir, name)))
    # a run without axes would hold the work dirs of its siblings with axes
    for name in seen:
        if '/' not in name and any(other.startswith(name + '/')
                                   for other in seen):
            raise MMRSKDError(
                f'{where}: {seen[name]} runs once without axes and again with '
                'axes in another experiment; give both experiments the same '
                'axes (e.g. randomness.seed: [0])')
    return Sweep(runs, work_dir, spec.get('metric'))


def load_sweep_file(path: str, work_dir: Optional[str] = None) -> Sweep:
    """Read and expand a sweep file (``.yml``/``.yaml``/``.py``/``.json``).

    Args:
        path (str): the sweep file.
        work_dir (str, optional): overrides the file's ``work_dir``; the
            default is ``work_dirs/sweeps/<file stem>``.
    """
    from mmengine.config import Config
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
    from mmengine.config import Config
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
