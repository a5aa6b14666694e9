"""How a distillation loss is fed: ``loss_mappings`` in a distiller config.

Each loss name maps its ``forward`` argument names to sources::

    loss_mappings=dict(
        loss_fgd=dict(
            preds_S=dict(source='s_fpn', index=0, connector='adapt_p3'),
            preds_T='t_fpn[0]',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas'))

A source is a tap name, a cross-forward name, or one of :data:`BATCH_SOURCES`
(what detection KD needs beyond features). ``index`` picks from nested
outputs (an int, or a tuple of ints such as ``(0, 2)`` for the class scores of
level 2 of a head output); ``connector`` adapts the value; ``detach`` cuts
the gradient.
"""
import inspect
import re
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from mmrskd.utils import MMRSKDError

BATCH_SOURCES = ('gt_instances', 'img_metas', 'data_samples', 'inputs')
_INDEXED = re.compile(r'^(?P<name>[\w.]+)(?P<index>(\[-?\d+\])*)$')


@dataclass(frozen=True)
class Source:
    name: str
    index: Optional[Tuple[int, ...]] = None
    connector: Optional[str] = None
    detach: bool = False

    @classmethod
    def parse(cls, spec, where):
        if isinstance(spec, str):
            match = _INDEXED.match(spec)
            if match is None:
                raise MMRSKDError(f'{where}: cannot parse source {spec!r}; '
                                  'write "tap" or "tap[0]"')
            index = tuple(int(i) for i in
                          re.findall(r'-?\d+', match.group('index')))
            return cls(match.group('name'), index or None)
        if isinstance(spec, dict) and 'source' in spec:
            unknown = set(spec) - {'source', 'index', 'connector', 'detach'}
            if unknown:
                raise MMRSKDError(f'{where}: unknown keys {sorted(unknown)}; '
                                  'a source takes source, index, connector, '
                                  'detach')
            index = spec.get('index')
            if isinstance(index, int):
                index = (index, )
            return cls(spec['source'], tuple(index) if index else None,
                       spec.get('connector'), bool(spec.get('detach', False)))
        raise MMRSKDError(f'{where}: expected a source name or '
                          f'dict(source=...), got {spec!r}')


def select(value, index):
    for i in index or ():
        value = value[i]
    return value


def tensors(value):
    """Flatten nested tuples/lists into their tensors."""
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors(item)]
    return []


def shapes(value):
    """The shapes of the tensors of a (nested) value, for messages."""
    return [tuple(t.shape) for t in tensors(value)]


def check_pair_shapes(name, kwargs):
    """``x_S`` and ``x_T`` arguments of loss ``name`` must have equal
    shapes."""
    for arg_s, value_s in kwargs.items():
        arg_t = arg_s[:-2] + '_T'
        if not arg_s.endswith('_S') or arg_t not in kwargs:
            continue
        shape_s, shape_t = shapes(value_s), shapes(kwargs[arg_t])
        if shape_s != shape_t:
            raise MMRSKDError(
                f'loss_mappings.{name}: {arg_s} has shape {shape_s} but '
                f'{arg_t} has {shape_t}; adapt the student source with a '
                'connector, e.g. connectors=dict(adapt=dict(type='
                '"ConvBNConnector", in_channels=C_S, out_channels=C_T)) '
                'and dict(source=..., connector="adapt")')


def parse_loss_mappings(mappings, losses, known_sources, connectors):
    """Check every mapping against its loss and the known sources.

    Args:
        mappings (dict): ``loss_mappings`` from the config.
        losses (dict[str, nn.Module]): the built distillation losses.
        known_sources (Iterable[str]): tap and cross-forward names.
        connectors (Iterable[str]): connector names.

    Returns:
        dict[str, dict[str, Source]]: parsed mappings per loss.
    """
    known_sources = set(known_sources) | set(BATCH_SOURCES)
    connectors = set(connectors)
    unknown_losses = set(mappings) - set(losses)
    if unknown_losses:
        raise MMRSKDError(f'loss_mappings: {sorted(unknown_losses)} not in '
                          f'distill_losses ({sorted(losses)})')
    parsed = {}
    for loss_name, loss in losses.items():
        if loss_name not in mappings:
            raise MMRSKDError(f'loss_mappings: no mapping for distill loss '
                              f'"{loss_name}"')
        where = f'loss_mappings.{loss_name}'
        params = inspect.signature(loss.forward).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for arg in mappings[loss_name]:
            if arg not in params and not takes_any:
                raise MMRSKDError(
                    f'{where}.{arg}: {type(loss).__name__}.forward has no '
                    f'argument "{arg}" (it takes {", ".join(params)})')
        required = [name for name, p in params.items()
                    if p.default is p.empty
                    and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [name for name in required if name not in mappings[loss_name]]
        if missing:
            raise MMRSKDError(f'{where}: {type(loss).__name__}.forward needs '
                              f'{missing}, which the mapping does not give')
        parsed[loss_name] = {}
        for arg, spec in mappings[loss_name].items():
            source = Source.parse(spec, f'{where}.{arg}')
            if source.name not in known_sources:
                raise MMRSKDError(
                    f'{where}.{arg}: unknown source "{source.name}"; known: '
                    f'{", ".join(sorted(known_sources))}')
            if source.connector and source.connector not in connectors:
                raise MMRSKDError(
                    f'{where}.{arg}: unknown connector "{source.connector}"; '
                    f'known: {", ".join(sorted(connectors)) or "none"}')
            parsed[loss_name][arg] = source
    return parsed
