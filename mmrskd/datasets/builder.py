"""Build a dataset from a training config, for the dataset tools."""
from typing import Optional

from mmengine.registry import init_default_scope

from mmrskd.registry import DATASETS
from mmrskd.utils import MMRSKDError, register_all_modules
from mmrskd.utils.cli import load_tool_config


def build_dataset_from_config(config_path: str, split: str,
                              cfg_options: Optional[dict] = None):
    """The dataset of ``<split>_dataloader`` in a config, built by the
    registry in the config's default scope.

    Args:
        config_path (str): the config, as a tool was given it.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
    """
    register_all_modules(init_default_scope=False)
    cfg = load_tool_config(config_path, cfg_options)
    key = f'{split}_dataloader'
    if not cfg.get(key) or 'dataset' not in cfg[key]:
        raise MMRSKDError(f'{key}.dataset is not set in {config_path}; '
                          'choose another --split or add the dataloader')
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    return DATASETS.build(cfg[key]['dataset'])
