import copy

import torch.nn as nn

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class MultiLevelConnector(nn.Module):
    """One connector per pyramid level, applied to a tuple of levels.

    Args:
        connector (dict): config of the per-level connector.
        num_levels (int): how many levels (and independent connectors).
        in_channels (Sequence[int] | None): per-level input channels, when
            they differ between levels (e.g. a student backbone tap);
            overrides ``connector['in_channels']``.
        out_channels (Sequence[int] | None): per-level output channels (e.g.
            a YOLOv8/RTMDet teacher neck, wider at coarser levels);
            overrides ``connector['out_channels']``.
    """

    def __init__(self, connector, num_levels, in_channels=None,
                 out_channels=None):
        super().__init__()
        per_level = dict(in_channels=in_channels, out_channels=out_channels)
        for key, values in per_level.items():
            if values is not None and len(values) != num_levels:
                raise MMRSKDError(f'MultiLevelConnector: {key} has '
                                  f'{len(values)} entries for {num_levels} '
                                  'levels')
        levels = []
        for level in range(num_levels):
            cfg = copy.deepcopy(connector)
            for key, values in per_level.items():
                if values is not None:
                    cfg[key] = values[level]
            levels.append(MODELS.build(cfg))
        self.levels = nn.ModuleList(levels)

    def forward(self, feats):
        """Map ``num_levels`` tensors ``(N, C_l, H_l, W_l)`` level by level."""
        if len(feats) != len(self.levels):
            raise MMRSKDError(f'MultiLevelConnector got {len(feats)} levels, '
                              f'built for {len(self.levels)}')
        return tuple(level(feat) for level, feat in zip(self.levels, feats))
