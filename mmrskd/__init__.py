"""mmrskd: knowledge distillation for remote-sensing object detection."""
from mmrskd.utils import compat as _compat

_compat.apply_all()

from mmrskd.version import __version__  # noqa: E402

__all__ = ['__version__']
