from mmrskd.models import (backbones, connectors, dense_heads, detectors,
                           distillers, layers, loss_schedules, losses, necks,
                           task_modules, utils)

__all__ = [
    'backbones', 'connectors', 'dense_heads', 'detectors', 'distillers',
    'layers', 'loss_schedules', 'losses', 'necks', 'task_modules', 'utils'
]
