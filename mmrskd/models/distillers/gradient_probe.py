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
from typing import Dict, Optional, Sequence

import torch
from mmengine.dist import all_reduce
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

    def due(self) -> bool:
        """Whether this training iteration is probed."""
        return MessageHub.get_current_instance().get_info(
            'iter', 0) % self.interval == 0

    def measure(self, det_losses: Dict[str, object],
                kd_losses: Dict[str, Tensor]) -> Dict[str, float]:
        """``grad/det``, ``grad/<kd loss>`` and ``grad_ratio/<kd loss>``."""
        det = sum(summed(v) for k, v in det_losses.items() if 'loss' in k)
        measured = {'grad/det': self.norm(det)}
        for name, value in kd_losses.items():
            measured[f'grad/{name}'] = self.norm(summed(value))
            measured[f'grad_ratio/{name}'] = (
                measured[f'grad/{name}'] / measured['grad/det']
                if measured['grad/det'] > 0 else float('inf'))
        return measured

    def __call__(self, det_losses: Dict[str, object],
                 kd_losses: Dict[str, Tensor]) -> Dict[str, float]:
        """Probe (on the due iterations) and log; returns what was logged."""
        if not self.due():
            return {}
        logged = self.measure(det_losses, kd_losses)
        log_scalars(logged)
        return logged


def log_scalars(values: Dict[str, float]):
    hub = MessageHub.get_current_instance()
    for key, value in values.items():
        hub.update_scalar(f'train/{key}', value)


class GradientBalance(nn.Module):
    r"""Calibrate each distillation term to a set share of the detection
    gradient at the student's shared layers.

    Paper loss weights assume the authors' detector and its loss sums; on
    another detector the same weight can make a term drown the detection
    loss or vanish (measured here: ADMD's term at 350-780x and DKED's
    response term at 40-46x the detection gradient at the neck). The rule:
    every ``interval`` iterations of the first ``calibration_iters``, with
    :math:`r_k` the gradient-norm ratio of term :math:`k` (unscheduled:
    the scheduled term's ratio divided by its schedule weight :math:`w_k`)
    over the summed detection losses at the probed modules,

    .. math::
        E_k \leftarrow m E_k + (1 - m) r_k \;(E_k = r_k \text{ at first}),
        \qquad f_k = \min(\rho_k / E_k,\ f_{max}),

    and the term enters the total loss as :math:`f_k w_k L_k`. After the
    calibration :math:`f_k` is frozen, so the paper's own dynamics (a
    weight schedule such as ADMD's weight-increasing module, a loss that
    shrinks as the student catches up) act on a fixed, calibrated scale;
    ``calibration_iters=None`` keeps tracking for the whole run. A term with
    no gradient at the probed modules (e.g. a backbone-only term probed at
    the neck) keeps :math:`f_k = 1`. The ratios are averaged over ranks;
    the EMAs are buffers, so ``--resume`` restores them.

    Caveat, measured: a feature term's ratio falls fast while the student's
    features first approach the teacher's (ADMD on the synthetic rotated
    pair: 45 to 5.9 over the first 100 iterations), so a factor frozen
    from that window leaves the term well below :math:`\rho_k` afterwards
    (there about 0.1x for :math:`\rho = 0.5`, too little to act). ADMD's
    configs no longer use this rule (``configs/admd/README.md``).

    Args:
        probe (GradientProbe): measures the ratios (its modules, interval).
        names (Sequence[str]): the distillation terms.
        target_ratio (float | dict[str, float]): :math:`\rho_k`, one for all
            terms or one per term (terms left out keep ``f = 1``).
        momentum (float): :math:`m` in [0, 1). Defaults to 0.9.
        max_factor (float): :math:`f_{max}`. Defaults to 10.
        calibration_iters (int, optional): iterations over which the
            factors are measured; None: all. Defaults to None.
        where (str): the config key, for error messages.
    """

    def __init__(self, probe: GradientProbe, names: Sequence[str],
                 target_ratio, momentum: float = 0.9,
                 max_factor: float = 10.0,
                 calibration_iters: Optional[int] = None,
                 where: str = 'grad_balance'):
        super().__init__()
        if not isinstance(target_ratio, dict):
            target_ratio = {name: target_ratio for name in names}
        unknown = sorted(set(target_ratio) - set(names))
        if unknown:
            raise MMRSKDError(f'{where}.target_ratio: {unknown} name no '
                              f'distill loss; known: {sorted(names)}')
        for name, ratio in target_ratio.items():
            if not ratio > 0:
                raise MMRSKDError(f'{where}.target_ratio[{name}]={ratio}: '
                                  'must be > 0')
        if not 0 <= momentum < 1:
            raise MMRSKDError(f'{where}.momentum={momentum}: must be in '
                              '[0, 1)')
        if not max_factor > 0:
            raise MMRSKDError(f'{where}.max_factor={max_factor}: must be '
                              '> 0')
        if calibration_iters is not None and calibration_iters < 1:
            raise MMRSKDError(f'{where}.calibration_iters='
                              f'{calibration_iters}: must be >= 1 or None')
        self.calibration_iters = calibration_iters
        self.probe = probe
        self.names = [n for n in names if n in target_ratio]
        self.register_buffer('target', torch.tensor(
            [float(target_ratio[n]) for n in self.names],
            dtype=torch.float64), persistent=False)
        self.momentum = float(momentum)
        self.max_factor = float(max_factor)
        # -1: not measured yet
        self.register_buffer('ema_ratio', torch.full(
            (len(self.names), ), -1.0, dtype=torch.float64))

    @classmethod
    def build(cls, model: nn.Module, losses: Dict[str, nn.Module],
              target_ratio, modules: Sequence[str] = ('student.neck', ),
              interval: int = 10, where: str = 'grad_balance',
              **kwargs) -> 'GradientBalance':
        """The balance of a distiller's ``losses`` (the ``grad_balance``
        config): a probe of ``model``'s ``modules`` every ``interval``
        iterations, over the losses that may be rescaled (a loss whose
        ``rescalable`` is False, e.g. DKED's prediction term in
        ``'reweight'``, holds only at multiplier 1 and keeps it)."""
        fixed = sorted(n for n, loss in losses.items()
                       if not getattr(loss, 'rescalable', True))
        clash = sorted(set(target_ratio) & set(fixed)) \
            if isinstance(target_ratio, dict) else []
        if clash:
            raise MMRSKDError(
                f'{where}.target_ratio: {clash} hold only at multiplier 1 '
                "(e.g. DKEDPredictionLoss combine='reweight'); drop them "
                'from target_ratio')
        probe = GradientProbe(model, modules, interval, where=where)
        return cls(probe, [n for n in losses if n not in fixed],
                   target_ratio, where=where, **kwargs)

    def factors(self) -> Dict[str, float]:
        """The current multiplier of every balanced term."""
        known = self.ema_ratio > 0
        factor = torch.where(
            known, (self.target / self.ema_ratio.clamp_min(1e-300)).clamp(
                max=self.max_factor), torch.ones_like(self.ema_ratio))
        return dict(zip(self.names, factor.tolist()))

    def calibrating(self) -> bool:
        if self.calibration_iters is None:
            return True
        return MessageHub.get_current_instance().get_info(
            'iter', 0) < self.calibration_iters

    def forward(self, det_losses: Dict[str, object],
                kd_losses: Dict[str, Tensor],
                schedule_weights: Optional[Dict[str, float]] = None
                ) -> Dict[str, Tensor]:
        """Update the ratios on the due calibration iterations; returns
        ``kd_losses`` scaled. ``schedule_weights`` are the weights the terms
        were already scheduled with (1 when not given)."""
        weights = schedule_weights or {}
        due = [n for n in self.names if weights.get(n, 1.0) > 0]
        if due and self.calibrating() and self.probe.due():
            measured = self.probe.measure(
                det_losses, {n: kd_losses[n] for n in due})
            ratio = torch.tensor(
                [measured[f'grad_ratio/{n}'] / weights.get(n, 1.0)
                 if n in due else float('nan') for n in self.names],
                dtype=torch.float64, device=self.ema_ratio.device)
            all_reduce(ratio, op='mean')
            seen = torch.isfinite(ratio) & (ratio > 0)
            first = self.ema_ratio < 0
            ema = torch.where(first, ratio, self.momentum * self.ema_ratio +
                              (1 - self.momentum) * ratio)
            self.ema_ratio.copy_(torch.where(seen, ema, self.ema_ratio))
            log_scalars(measured)
            log_scalars({f'grad_balance/{n}': f
                         for n, f in self.factors().items()})
        factors = self.factors()
        return {name: value * factors[name] if name in factors else value
                for name, value in kd_losses.items()}
