from typing import Iterator, Optional

from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper

from mmrskd.models.layers.ddc import DynamicDirectionalConv2d
from mmrskd.registry import HOOKS
from mmrskd.utils import MMRSKDError


@HOOKS.register_module()
class DDCTemperatureHook(Hook):
    """Anneal the attention temperature of every DDC layer.

    ``T = max(start - step * n, end)`` where ``n`` counts epochs
    (``by_epoch=True``) or blocks of ``interval`` iterations. The default
    34 -> 31 -> ... -> 1 is the schedule of the DDC prototype and of
    DynamicConv (Chen et al., CVPR 2020): a soft, nearly uniform mixture
    early on that sharpens into an orientation choice.

    The value is recomputed from the runner's epoch/iteration, and it is a
    buffer of each layer, so resumed runs continue the schedule. Layers of the
    EMA copy (:class:`mmengine.hooks.EMAHook`) are set too, so the averaged
    model is evaluated with the current temperature.

    Args:
        start (float): Temperature of the first epoch. Default 34.
        step (float): Decrease per epoch (or per ``interval`` iterations).
            Default 3.
        end (float): Lowest temperature. Default 1.
        by_epoch (bool): Update per epoch, else per ``interval`` iterations.
            Default True.
        interval (int): Iterations per step when ``by_epoch=False``.
            Default 1.
    """

    priority = 'NORMAL'

    def __init__(self,
                 start: float = 34.0,
                 step: float = 3.0,
                 end: float = 1.0,
                 by_epoch: bool = True,
                 interval: int = 1) -> None:
        if not start >= end > 0 or step < 0 or interval < 1:
            raise MMRSKDError(
                f'DDCTemperatureHook: need start >= end > 0, step >= 0 and '
                f'interval >= 1 (got start={start}, end={end}, step={step}, '
                f'interval={interval})')
        self.start = start
        self.step = step
        self.end = end
        self.by_epoch = by_epoch
        self.interval = interval

    def temperature_at(self, num_steps: int) -> float:
        """Temperature after ``num_steps`` annealing steps."""
        return max(self.start - self.step * num_steps, self.end)

    @staticmethod
    def _ddc_layers(runner) -> Iterator[DynamicDirectionalConv2d]:
        models = [runner.model]
        models += [
            hook.ema_model for hook in runner.hooks
            if isinstance(hook, EMAHook) and hasattr(hook, 'ema_model')
        ]
        for model in models:
            if is_model_wrapper(model):
                model = model.module
            for module in model.modules():
                if isinstance(module, DynamicDirectionalConv2d):
                    yield module

    def _set(self, runner, num_steps: int) -> None:
        temperature = self.temperature_at(num_steps)
        layers = list(self._ddc_layers(runner))
        if not layers:
            raise MMRSKDError(
                'DDCTemperatureHook: the model has no DDC layer; remove the '
                "hook from custom_hooks or build convs with conv_cfg=dict("
                "type='DDC')")
        for layer in layers:
            layer.set_temperature(temperature)

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._set(runner, runner.epoch)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        if not self.by_epoch and runner.iter % self.interval == 0:
            self._set(runner, runner.iter // self.interval)
