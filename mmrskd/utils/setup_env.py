import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every registering module of mmrskd, mmrotate and mmdet.

    Args:
        init_default_scope (bool): set the default scope to ``'mmrskd'``.
            Defaults to True.
    """
    from mmdet.utils import register_all_modules as register_mmdet
    register_mmdet(init_default_scope=False)
    # the layers above utils, imported here only: at module level they would
    # make this bottom layer depend on them
    import mmrskd.datasets  # noqa: F401
    import mmrskd.engine  # noqa: F401
    import mmrskd.evaluation  # noqa: F401
    import mmrskd.models  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('mmrskd'):
        DefaultScope.get_instance('mmrskd', scope_name='mmrskd')
    elif current.scope_name != 'mmrskd':
        warnings.warn(f'The default scope "{current.scope_name}" is replaced '
                      'by "mmrskd"; pass init_default_scope=False to keep it.')
        DefaultScope.get_instance(f'mmrskd-{datetime.datetime.now()}',
                                  scope_name='mmrskd')
