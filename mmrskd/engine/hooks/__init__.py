from mmrskd.engine.hooks.ddc_temperature_hook import DDCTemperatureHook

__all__ = ['DDCTemperatureHook']
