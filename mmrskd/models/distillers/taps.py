"""Taps: named records of what a module or method of a detector produced.

A tap is declared in a distiller config as

* ``'student.neck'`` — outputs of ``student.neck`` (a string);
* ``dict(model='teacher', module='bbox_head.cls_convs.3', io='input')`` —
  the positional inputs of a module's forward (a tuple; ``io='output'`` is the
  default);
* ``dict(model='student', method='bbox_head.get_targets')`` — the return value
  of a method of a submodule, e.g. the head's label assignment.

Taps record only inside :meth:`TapSet.recording` (the distiller's forward
passes, not validation or cross forwards), and :meth:`TapSet.clear` drops the
records once the distillation losses are computed, so nothing outlives the
step.
"""
import difflib
from contextlib import contextmanager
from dataclasses import dataclass

from mmrskd.utils import MMRSKDError

MODEL_NAMES = ('student', 'teacher')


class TapsComplete(Exception):
    """Raised inside a forward once every tap of a :class:`TapSet` with
    ``stop_when_complete`` has fired, to skip the rest of the teacher."""


@dataclass(frozen=True)
class TapSpec:
    name: str
    model: str
    path: str
    io: str = 'output'  # 'output' | 'input' | 'method'

    @classmethod
    def parse(cls, name, spec):
        """Normalise the two config spellings of a tap."""
        if isinstance(spec, str):
            model, _, path = spec.partition('.')
            spec = dict(model=model, module=path)
        if not isinstance(spec, dict):
            raise MMRSKDError(f'taps.{name}: expected "student.<module path>" '
                              f'or a dict, got {spec!r}')
        model = spec.get('model')
        if model not in MODEL_NAMES:
            raise MMRSKDError(f'taps.{name}.model must be "student" or '
                              f'"teacher", got {model!r}')
        if 'method' in spec:
            return cls(name, model, spec['method'], 'method')
        io = spec.get('io', 'output')
        if io not in ('output', 'input'):
            raise MMRSKDError(f'taps.{name}.io must be "output" or "input", '
                              f'got {io!r}')
        if not spec.get('module'):
            raise MMRSKDError(f'taps.{name}: give module="<path>" or '
                              'method="<path>"')
        return cls(name, model, spec['module'], io)


def find_module(model, path, where):
    """``model.get_submodule(path)`` with an error that lists near names."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    near = difflib.get_close_matches(path, list(modules), n=5, cutoff=0.5)
    hint = f'; nearest: {", ".join(near)}' if near else ''
    raise MMRSKDError(f'{where}: no module "{path}" in the {type(model).__name__}'
                      f'{hint}')


class TapSet:
    """Hooks that fill ``records`` for the taps of one model.

    Args:
        model (nn.Module): the student or the teacher.
        specs (list[TapSpec]): its taps.
    """

    def __init__(self, model, specs):
        self.specs = list(specs)
        self.records = {}
        self.active = False
        self.stop_when_complete = False
        self._handles = []
        for spec in self.specs:
            where = f'taps.{spec.name}'
            if spec.io == 'method':
                owner_path, _, method_name = spec.path.rpartition('.')
                owner = find_module(model, owner_path, where)
                if not callable(getattr(owner, method_name, None)):
                    raise MMRSKDError(
                        f'{where}: {type(owner).__name__} at "{owner_path}" '
                        f'has no method "{method_name}"')
                self._wrap_method(owner, method_name, spec.name)
            else:
                module = find_module(model, spec.path, where)
                self._handles.append(
                    module.register_forward_hook(self._hook(spec)))

    def _hook(self, spec):
        def record(module, inputs, output):
            self._store(spec.name, inputs if spec.io == 'input' else output)
        return record

    @contextmanager
    def recording(self, stop_when_complete=False):
        """Record while inside; with ``stop_when_complete``, raise
        :class:`TapsComplete` once every tap has fired."""
        self.active = True
        self.stop_when_complete = stop_when_complete
        try:
            yield self.records
        finally:
            self.active = False
            self.stop_when_complete = False

    def _store(self, name, value):
        if not self.active:
            return
        self.records[name] = value
        if self.stop_when_complete and len(self.records) == len(self.specs):
            raise TapsComplete

    def _wrap_method(self, owner, method_name, tap_name):
        method = getattr(owner, method_name)

        def recorded(*args, **kwargs):
            result = method(*args, **kwargs)
            self._store(tap_name, result)
            return result

        # An instance attribute shadows the class method for this object only.
        setattr(owner, method_name, recorded)

    @property
    def names(self):
        return [spec.name for spec in self.specs]

    def missing(self):
        return [name for name in self.names if name not in self.records]

    def clear(self):
        self.records.clear()
