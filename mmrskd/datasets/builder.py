"""Build a dataset from a training config, for the dataset tools."""
from mmengine.registry import init_default_scope

from mmrskd.registry import DATASETS
from mmrskd.utils import MMRSKDError


def build_split_dataset(cfg, split: str, config_path: str):
    """The dataset of ``cfg.<split>_dataloader``, built by the registry in
    the config's default scope.

    Args:
        cfg (Config): the loaded config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        config_path (str): the config's path, for the error message.
    """
    key = f'{split}_dataloader'
    if not cfg.get(key) or 'dataset' not in cfg[key]:
        raise MMRSKDError(f'{key}.dataset is not set in {config_path}; '
                          'choose another --split or add the dataloader')
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    return DATASETS.build(cfg[key]['dataset'])
