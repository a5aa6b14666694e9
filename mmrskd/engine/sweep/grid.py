"""Sweep grids (configs × ``--cfg-options`` axes → named runs) and the
manifest of a sweep dir (``docs/sweeps.md``, section 1). A value means what
``--cfg-options KEY=VALUE`` makes of it: written so, parsed by DictAction."""
import dataclasses
import hashlib
import inspect
import itertools
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import mmengine
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import atomic_write_bytes
from mmrskd.utils.config import load_config

SWEEP_KEYS = ('configs', 'grid', 'cfg_options', 'experiments', 'metric',
              'work_dir')
MANIFEST = 'sweep.json'


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One training run; ``axes`` are ``(key, short name, value)``,
    ``cfg_options`` every override as ``--cfg-options`` parses it."""
    name: str
    config: str
    axes: Tuple[Tuple[str, str, Any], ...]
    cfg_options: Dict[str, Any]
    work_dir: str

    @property
    def method(self) -> str:
        return config_stem(self.config)

    @property
    def axis_values(self) -> Dict[str, Any]:
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
    """``value`` as ``--cfg-options`` takes it; refuses what it can't carry."""
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


def name_value(value: Any) -> str:
    """A value as it appears in run names and directory names."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return format_value(value).replace('/', '%2F').replace('\\', '%5C')


def short_axis_names(keys: List[str]) -> Dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with,
    e.g. ``randomness.seed`` → ``seed``."""
    names = {}
    for key in keys:
        parts, others = key.split('.'), ['.' + k for k in keys if k != key]
        names[key] = next((suffix for suffix in (
            '.'.join(parts[-n:]) for n in range(1, len(parts)))
            if not any(o.endswith('.' + suffix) for o in others)), key)
    return names


def _mapping(value, where: str, allowed=None) -> dict:
    """``value`` (None: empty) as a dict with only ``allowed`` keys."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise MMRSKDError(f'{where}: expected a mapping, got {value!r}')
    unknown = sorted(set(value) - set(allowed or value))
    if unknown:
        raise MMRSKDError(f'{where}: unknown keys {unknown}; it takes '
                          f'{", ".join(allowed)}')
    return dict(value)


def _experiments(spec: dict, where: str):
    """``(configs, grid, cfg_options)`` of each experiment (a top-level
    ``configs`` first): the shared axes after its own, its own overrides
    winning, axes set to None dropped."""
    spec = _mapping(spec, where, SWEEP_KEYS)
    shared_grid = _mapping(spec.get('grid'), f'{where}: grid')
    shared_options = _mapping(spec.get('cfg_options'), f'{where}: cfg_options')
    entries = [dict(configs=spec['configs'])] if spec.get('configs') else []
    for index, entry in enumerate(
            entries + list(spec.get('experiments') or [])):
        at = f'{where}: experiments[{index}]'
        entry = _mapping(entry, at, SWEEP_KEYS[:3])
        configs = entry.get('configs') or []
        grid = _mapping(entry.get('grid'), f'{at}.grid')
        grid.update({k: v for k, v in shared_grid.items() if k not in grid})
        options = dict(shared_options, **_mapping(entry.get('cfg_options'),
                                                  f'{at}.cfg_options'))
        yield ([configs] if isinstance(configs, str) else list(configs),
               {k: v for k, v in grid.items() if v is not None}, options)


def expand_grid(spec: dict, work_dir: str, where: str = 'sweep') -> Sweep:
    """The runs of a sweep spec (the keys of a sweep file) in ``work_dir``:
    configs in the given order, each crossed with the axes in grid order
    (the last varies fastest); ``where`` names the spec in errors."""
    runs, seen = [], {}
    experiments = list(_experiments(spec, where))
    # over every experiment's axes, so that two experiments sweeping
    # a.loss_weight and b.loss_weight name their runs apart
    short = short_axis_names(list(dict.fromkeys(
        key for _, grid, _ in experiments for key in grid)))
    for configs, grid, options in experiments:
        axes = {}
        for key, values in grid.items():
            values = values if isinstance(values, (list, tuple)) else [values]
            axes[key] = [DictAction._parse_iterable(format_value(
                v, f'grid.{key}')) for v in values]
            if len({name_value(v) for v in axes[key]}) < len(values):
                raise MMRSKDError(f'grid.{key}: repeated values {values!r}')
        fixed = {key: DictAction._parse_iterable(format_value(
            value, f'cfg_options.{key}'))
            for key, value in options.items() if key not in axes}
        for config, combo in itertools.product(
                configs, itertools.product(*axes.values())):
            run_axes = tuple(zip(axes, map(short.get, axes), combo))
            name = config_stem(config)
            if run_axes:
                name += '/' + ','.join(f'{s}={name_value(v)}'
                                       for _, s, v in run_axes)
            if name in seen:
                raise MMRSKDError(
                    f'{where}: run "{name}" comes from {seen[name]} and '
                    f'{config}; rename a config or drop the duplicate')
            seen[name] = config
            runs.append(SweepRun(name, config, run_axes,
                                 dict(fixed, **dict(zip(axes, combo))),
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
    """Read and expand a sweep file; ``work_dir`` overrides the file's."""
    if not osp.isfile(path):
        raise MMRSKDError(f'sweep file not found: {osp.abspath(path)}')
    spec = Config.fromfile(path).to_dict()
    return expand_grid(spec, work_dir or spec.get('work_dir') or osp.join(
        'work_dirs', 'sweeps', config_stem(path)), where=path)


def is_sweep_file(path: str) -> bool:
    """YAML files are sweep files; Python/JSON ones when they have no
    ``model`` but ``configs`` or ``experiments``."""
    if path.endswith(('.yml', '.yaml')):
        return True
    keys = set(Config.fromfile(path)) if osp.isfile(path) else set()
    return 'model' not in keys and bool(keys & {'configs', 'experiments'})


def _takes_argument(node: Any, argument: str) -> Optional[bool]:
    """Whether the model component that ``node`` configures takes
    ``argument``; None when ``node`` configures none."""
    component = isinstance(node, dict) and isinstance(
        node.get('type'), str) and MODELS.get(node['type'])
    if not component:
        return None
    parameters = inspect.signature(component).parameters
    return argument in parameters or any(
        p.kind == p.VAR_KEYWORD for p in parameters.values())


def _settings_dict(node: dict) -> bool:
    """A dict of plain settings (TASD's ``terms``, ``grad_balance``): no
    ``type``, and no entry that configures a component (unlike
    ``distill_losses``, where a new entry is more likely a misspelt loss)."""
    return 'type' not in node and not any(
        isinstance(value, dict) and 'type' in value
        for value in node.values())


def check_option_key(where: str, config: str, cfg: dict, key: str) -> None:
    """``key`` (dotted, as ``--cfg-options`` takes it) names a value of
    ``cfg`` (``config`` as a dict), an argument of mmengine's ``Runner`` at
    the top level (``randomness``), or an argument that the model component
    there takes (a new dict such as a distiller's ``grad_balance``). A new
    leaf in a dict that is no model component (``grad_balance``'s own), and
    a new entry of a dict of plain settings (a TASD term), are left to their
    consumer, which rejects unknown ones when the run builds.
    A misspelt key would otherwise train a copy of the config under the
    run's name; the error names ``where`` and the missing part."""
    *parents, leaf = key.split('.')
    if parents and parents[0] not in cfg and \
            parents[0] in inspect.signature(Runner).parameters:
        return
    node = cfg
    for depth, part in enumerate(parents + [leaf]):
        if isinstance(node, list) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        takes = _takes_argument(node, part)
        if takes or takes is None and isinstance(node, dict) and (
                depth == len(parents) or _settings_dict(node)):
            return
        at = '.'.join(parents[:depth]) or 'the top level'
        raise MMRSKDError(f'{where}: "{key}": {config} has no "{part}" at '
                          f'{at}; check the spelling')


def resolved_config(run: SweepRun) -> Config:
    """The run's config, ``_base_`` merged and its overrides applied, each
    override's key checked by :func:`check_option_key`."""
    cfg = load_config(run.config, where=f'{run.name}: config')
    as_dict = cfg.to_dict()
    for key in run.cfg_options:
        check_option_key(f'{run.name}: cfg_options', run.config, as_dict, key)
    cfg.merge_from_dict(run.cfg_options)
    return cfg


def run_fingerprint(run: SweepRun) -> str:
    """sha256 of the run's resolved config (``_base_`` merged, overrides
    applied; configs it names by path compared by path)."""
    cfg = resolved_config(run)
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True,
                                     default=repr).encode()).hexdigest()


def write_manifest(sweep: Sweep):
    """Add the sweep's runs to ``<work_dir>/sweep.json`` (keeping those of
    earlier calls), configs by absolute path for the results tables."""
    path = osp.join(sweep.work_dir, MANIFEST)
    manifest = mmengine.load(path) if osp.isfile(path) else dict(runs={})
    for run in sweep.runs:
        manifest['runs'][run.name] = dict(
            dataclasses.asdict(run), config_path=run.config
            if '::' in run.config else osp.abspath(run.config))
    manifest['metric'] = sweep.metric or manifest.get('metric')
    atomic_write_bytes(json.dumps(manifest, indent=2).encode(), path)


def read_manifest(sweep_dir: str) -> Tuple[List[SweepRun], Optional[str]]:
    """The runs of a sweep dir's manifest (each in ``<sweep_dir>/<name>``,
    wherever the folder is now) and its metric."""
    path = osp.join(sweep_dir, MANIFEST)
    if not osp.isfile(path):
        raise MMRSKDError(f'{sweep_dir}: no {MANIFEST}; give the --work-dir '
                          'of a sweep that ran (tools/sweep.py writes it)')
    manifest = mmengine.load(path)
    return [SweepRun(name, r['config_path'], tuple(map(tuple, r['axes'])),
                     r['cfg_options'], osp.join(sweep_dir, name))
            for name, r in manifest['runs'].items()], manifest.get('metric')
