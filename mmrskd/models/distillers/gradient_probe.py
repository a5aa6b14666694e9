"""Gradient norms of every loss term at the student's shared layers.

A KD term that drowns the detection loss, or one that never reaches the
student, shows here first: every ``interval`` iterations the probe
differentiates each term separately with respect to the parameters of the
given student modules (the layers that detection and distillation share,
e.g. the neck) and logs, next to the losses,

* ``grad/det``: the norm of the summed detection losses' gradient;
* ``grad/<kd loss>``: the norm of each distillation term's gradient;
* ``grad_ratio/<kd loss>``: the latter over the former.

It costs one extra backward pass per term on the probed iterations only.
"""
from typing import Dict, Sequence

import torch
from mmengine.logging import MessageHub
from torch import Tensor, nn

from mmrskd.utils import MMRSKDError


def summed(value) -> Tensor:
    """A loss value (a tensor or a list of per-level tensors) as one sum."""
    if torch.is_tensor(value):
        return value.sum()
    return sum(v.sum() for v in value)


class GradientProbe:
    """Log per-term gradient norms of a distiller's student.

    Args:
        model (nn.Module): the distiller (module paths start at it).
        modules (Sequence[str]): student modules whose parameters are
            probed, e.g. ``['student.neck']``.
        interval (int): probe every ``interval`` training iterations.
            Defaults to 50.
        where (str): the config key, for error messages.
    """

    def __init__(self, model: nn.Module, modules: Sequence[str],
                 interval: int = 50, where: str = 'grad_probe'):
        if interval < 1:
            raise MMRSKDError(f'{where}.interval={interval}: must be >= 1')
        named = dict(model.named_modules())
        self.params = []
        for path in modules:
            if path not in named:
                close = [n for n in named if n.endswith(path.split('.')[-1])]
                raise MMRSKDError(f'{where}.modules: no module "{path}"; '
                                  f'similar: {close[:5]}')
            self.params += [p for p in named[path].parameters()
                            if p.requires_grad]
        if not self.params:
            raise MMRSKDError(f'{where}.modules {list(modules)}: no '
                              'trainable parameters to probe')
        self.interval = interval

    def norm(self, loss: Tensor) -> float:
        """The L2 norm of ``d loss / d params`` (0 when unconnected)."""
        if not loss.requires_grad:
            return 0.0
        grads = torch.autograd.grad(loss, self.params, retain_graph=True,
                                    allow_unused=True)
        squares = [(g.float()**2).sum() for g in grads if g is not None]
        return float(torch.stack(squares).sum().sqrt()) if squares else 0.0

    def __call__(self, det_losses: Dict[str, object],
                 kd_losses: Dict[str, Tensor]) -> Dict[str, float]:
        """Probe (on the due iterations) and log; returns what was logged."""
        hub = MessageHub.get_current_instance()
        if hub.get_info('iter', 0) % self.interval:
            return {}
        det = sum(summed(v) for k, v in det_losses.items() if 'loss' in k)
        logged = {'grad/det': self.norm(det)}
        for name, value in kd_losses.items():
            logged[f'grad/{name}'] = self.norm(summed(value))
            logged[f'grad_ratio/{name}'] = (
                logged[f'grad/{name}'] / logged['grad/det']
                if logged['grad/det'] > 0 else float('inf'))
        for key, value in logged.items():
            hub.update_scalar(f'train/{key}', value)
        return logged
