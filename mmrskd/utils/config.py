import os.path as osp

from mmengine.config import Config

from mmrskd.utils.errors import MMRSKDError

PACKAGE_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mmrskd_config_dir():
    """``configs/`` of this checkout, or of the installed package's ``.mim``."""
    for candidate in (osp.join(osp.dirname(PACKAGE_ROOT), 'configs'),
                      osp.join(PACKAGE_ROOT, '.mim', 'configs')):
        if osp.isdir(candidate):
            return candidate
    raise MMRSKDError('mmrskd:: configs not found: expected '
                      f'{osp.join(osp.dirname(PACKAGE_ROOT), "configs")}')


def load_config(path, where='config'):
    """Load a config from a local path or ``mmrskd::``/``mmdet::``/
    ``mmrotate::`` package path.

    Args:
        path (str): the config reference.
        where (str): the config key that named it, for error messages.

    Returns:
        Config: the loaded config.
    """
    if path.startswith('mmrskd::'):
        path = osp.join(mmrskd_config_dir(), path[len('mmrskd::'):])
    elif '::' in path:
        from mmengine.hub import get_config
        try:
            return get_config(path)
        except (FileNotFoundError, ValueError) as err:
            raise MMRSKDError(f'{where}: cannot load "{path}" ({err}); check '
                              'the package name and the path inside its '
                              'configs/') from None
    if not osp.isfile(path):
        raise MMRSKDError(f'{where}: config file not found: '
                          f'{osp.abspath(path)} (paths are relative to the '
                          'working directory; packaged configs take '
                          '"mmrskd::", "mmdet::" or "mmrotate::")')
    return Config.fromfile(path)
