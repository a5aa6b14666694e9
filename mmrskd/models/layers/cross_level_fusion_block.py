from typing import Optional, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from mmrskd.models.layers.local_implicit_calibration import \
    LocalImplicitCalibration
from mmrskd.registry import MODELS


@MODELS.register_module()
class CrossLevelFusionBlock(nn.Module):
    """One level of LTD's cross-layer calibration chain (ReviewKD's
    attention-based fusion, with LIC as the output convolution).

    ``x = BN(conv1x1(F_s))``; when ``fuse``, the residual ``r`` of the next
    coarser level is resized to ``x`` (nearest) and mixed in with two
    position-wise gates ``z = sigmoid(conv1x1([x, r]))``: ``x = x z_0 + r
    z_1``. The block returns ``BN(LIC(x))`` (compared with the teacher) and
    ``x`` (the residual passed to the next finer level).

    Args:
        in_channels (int): student channels of the level.
        mid_channels (int): channels of the residual path.
        out_channels (int): teacher channels of the level.
        fuse (bool): mix in a coarser residual (all levels but the
            coarsest).
        norm_cfg (dict): normalisation after the 1x1 conv and after LIC.
            Defaults to BN.
        with_cp (bool): checkpoint the block (mmcv's ``with_cp``): keep
            only its inputs for the backward and recompute the rest there;
            in the recomputation LIC also checkpoints each kernel tap, so
            its ``(N, 9 * mid_channels, H * W)`` sampled columns and their
            gradient are never held at once. Each recomputation updates
            the BN running statistics again, as in mmcv's ResNet. Defaults
            to False.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 fuse: bool,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 1, bias=False),
            build_norm_layer(norm_cfg, mid_channels)[1])
        self.calibrate = nn.Sequential(
            LocalImplicitCalibration(mid_channels, out_channels,
                                     with_cp=with_cp),
            build_norm_layer(norm_cfg, out_channels)[1])
        self.gate = nn.Conv2d(2 * mid_channels, 2, 1) if fuse else None

    def forward(self,
                feat: Tensor,
                residual: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Fuse one level.

        Args:
            feat (Tensor): student features ``(N, in_channels, H, W)``.
            residual (Tensor, optional): residual of the coarser level
                ``(N, mid_channels, H', W')``; required when ``fuse``.

        Returns:
            tuple[Tensor, Tensor]: output ``(N, out_channels, H, W)`` and
            residual ``(N, mid_channels, H, W)``.
        """
        # non-reentrant checkpointing also covers inputs that need no grad
        # (the block's parameters do), so only grad mode gates it
        if self.with_cp and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, feat, residual,
                                 use_reentrant=False)
        return self._forward(feat, residual)

    def _forward(self, feat: Tensor,
                 residual: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        x = self.reduce(feat)
        if self.gate is not None:
            residual = F.interpolate(residual, x.shape[-2:], mode='nearest')
            gates = torch.sigmoid(self.gate(torch.cat([x, residual], dim=1)))
            x = x * gates[:, :1] + residual * gates[:, 1:]
        return self.calibrate(x), x
