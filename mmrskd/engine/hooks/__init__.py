from mmrskd.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook
from mmrskd.engine.hooks.ddc_temperature_hook import DDCTemperatureHook

__all__ = ['AtomicCheckpointHook', 'DDCTemperatureHook']
