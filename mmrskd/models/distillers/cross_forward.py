"""Cross forwards: frozen teacher modules run on student values, with
gradient (CrossKD-style), declared in a distiller config as
``cross_forwards=dict(name=dict(source=..., modules=[...],
per_level=False, align_to=None))``; their results are sources for the
loss mappings."""
import torch

from mmrskd.models.distillers.loss_mapping import Source, shapes
from mmrskd.models.distillers.taps import find_module
from mmrskd.utils import MMRSKDError


def align_moments(value, reference, where, eps=1e-6):
    """Standardise each channel of ``value`` over ``(N, H, W)`` and give it
    the mean and std of the same channel of ``reference``.

    Args:
        value (Tensor | Sequence[Tensor]): ``(N, C, H, W)`` maps, or one
            per level.
        reference (Tensor | Sequence[Tensor]): the same shapes; treated as
            constants.
        where (str): the config key, for error messages.

    Returns:
        Tensor | tuple[Tensor]: like ``value``.
    """
    if torch.is_tensor(value):
        return align_moments([value], [reference], where, eps)[0]
    if shapes(value) != shapes(reference):
        raise MMRSKDError(f'{where}: shapes {shapes(value)} and '
                          f'{shapes(reference)} differ; align a source '
                          'adapted to the teacher\'s channels')
    aligned = []
    for feat, ref in zip(value, reference):
        var, mean = torch.var_mean(feat, dim=(0, 2, 3), keepdim=True,
                                   correction=0)
        ref_var, ref_mean = torch.var_mean(ref.detach(), dim=(0, 2, 3),
                                           keepdim=True, correction=0)
        aligned.append((feat - mean) / (var.sqrt() + eps) * ref_var.sqrt() +
                       ref_mean)
    return tuple(aligned)


def parse_cross_forwards(cross_forwards, teacher):
    """The ``cross_forwards`` config, checked against the teacher's
    modules: ``{name: dict(source=Source, modules=[paths],
    per_level=bool, align_to=Source | None)}``."""
    parsed = {}
    for name, spec in cross_forwards.items():
        where = f'cross_forwards.{name}'
        if not isinstance(spec, dict) or not spec.get('modules'):
            raise MMRSKDError(f'{where}: expected dict(source=..., '
                              'modules=[teacher module paths])')
        modules = spec['modules']
        if isinstance(modules, str):
            modules = [modules]
        for path in modules:
            find_module(teacher, path, f'{where}.modules')
        parsed[name] = dict(
            source=Source.parse(spec['source'], f'{where}.source'),
            modules=list(modules),
            per_level=bool(spec.get('per_level', False)),
            align_to=None if spec.get('align_to') is None else
            Source.parse(spec['align_to'], f'{where}.align_to'))
    return parsed


def run_cross_forward(name, spec, teacher, resolve):
    """The teacher modules of cross forward ``name`` applied to its source
    (per level when ``per_level``); ``resolve(source)`` gives the value of
    a :class:`Source` this step."""
    value = resolve(spec['source'])
    if spec['align_to'] is not None:
        value = align_moments(value, resolve(spec['align_to']),
                              f'cross_forwards.{name}.align_to')
    modules = [teacher.get_submodule(path) for path in spec['modules']]

    def run(x):
        for module in modules:
            x = module(x)
        return x

    return type(value)(run(v) for v in value) if spec['per_level'] else \
        run(value)
