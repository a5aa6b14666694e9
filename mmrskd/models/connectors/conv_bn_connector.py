from mmcv.cnn import ConvModule

from mmrskd.registry import MODELS


@MODELS.register_module()
class ConvBNConnector(ConvModule):
    """The usual feature adapter: ``k×k conv (default 1×1) + BN``, no ReLU.

    Maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``.

    Args:
        in_channels (int): student channels.
        out_channels (int): teacher channels.
        kernel_size (int): 1 (FitNet/FGD/ADMD) or 3. Defaults to 1.
        norm_cfg (dict | None): Defaults to BN.
        act_cfg (dict | None): Defaults to None (a linear adapter).
    """

    def __init__(self, in_channels, out_channels, kernel_size=1,
                 norm_cfg=dict(type='BN'), act_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=kernel_size // 2, norm_cfg=norm_cfg,
                         act_cfg=act_cfg)
