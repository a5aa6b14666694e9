from mmrskd.utils.errors import MMRSKDError
from mmrskd.utils.setup_env import register_all_modules

__all__ = ['MMRSKDError', 'register_all_modules']
