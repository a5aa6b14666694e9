"""Synthetic remote-sensing datasets in the real on-disk formats."""
from mmrskd.datasets.synthetic.generator import (FORMATS, default_classes,
                                                 generate, resolve_classes)

__all__ = ['FORMATS', 'default_classes', 'generate', 'resolve_classes']
