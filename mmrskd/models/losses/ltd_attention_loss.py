from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_positive,
                                        pair_levels)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class LTDAttentionLoss(nn.Module):
    r"""LTD's attention-masked same-level feature imitation (``loss_att``).

    `Bridging the Gap Between Cumbersome and Light Detectors via
    Layer-Calibration and Task-Disentangle Distillation in Remote Sensing
    Imagery <https://doi.org/10.1109/TGRS.2023.3241342>`_ (TGRS 2023), as in
    the authors' code (``Molly6/LTD``, ``CCD.forward``). Per level, with the
    spatial attention

    .. math::
        A(F)_{nhw} = HW\, \mathrm{softmax}_{hw}\big(\tfrac{1}{C}
            \textstyle\sum_c |F_{nchw}| / t\big)

    of the raw student features :math:`F_S` and of the teacher :math:`T`,
    the detached mask :math:`M = (A(F_S) + A(T)) / 2` and the adapted
    student :math:`S = \phi(F_S)` (a 1x1 conv connector):

    .. math::
        \mathcal{L} = \sum_l \Big( \sum_{n,c,h,w} M_{nhw}
            (S_{nchw} - T_{nchw})^2 \Big)^{1/2} .

    The square root of a zero sum has an infinite derivative; sums below
    ``eps`` are clamped to ``eps`` (zero gradient there).

    Args:
        temperature (float): attention temperature :math:`t`. Defaults to
            0.1 (the authors' code).
        eps (float): floor of the sum under the square root. Defaults to
            1e-12.
        loss_weight (float): multiplier of the loss; the released NWPU
            config uses 1e-3. Defaults to 1.0.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 eps: float = 1e-12,
                 loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'temperature', temperature)
        self.temperature = temperature
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                feats_S: Optional[MultiLevelTensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): adapted student features
                ``(N, C, H, W)``, one per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.
            feats_S (Tensor | Sequence[Tensor], optional): the features the
                student attention is computed from: the raw (un-adapted)
                student features in the authors' code, any channel count.
                Defaults to ``preds_S``.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        if feats_S is None:
            attention_src = [pred.detach() for pred in levels_S]
        else:
            attention_src, _ = pair_levels(name, feats_S, preds_T,
                                           same_shape=False)
            attention_src = [feat.detach() for feat in attention_src]
        loss = levels_S[0].new_zeros(())
        for level, (pred_S, pred_T, src_S) in enumerate(
                zip(levels_S, levels_T, attention_src)):
            if pred_S.dim() != 4 or src_S.dim() != 4 or \
                    src_S.shape[0] != pred_S.shape[0] or \
                    src_S.shape[2:] != pred_S.shape[2:]:
                raise MMRSKDError(
                    f'{name}: level {level} needs (N, C, H, W) features with '
                    f'the same N, H, W; got preds_S {tuple(pred_S.shape)} and '
                    f'feats_S {tuple(src_S.shape)}')
            mask = (self.spatial_attention(src_S) +
                    self.spatial_attention(pred_T)) / 2
            masked_sum = ((pred_S - pred_T)**2 * mask).sum()
            loss = loss + masked_sum.clamp_min(self.eps).sqrt()
        return self.loss_weight * loss

    def spatial_attention(self, feat: Tensor) -> Tensor:
        """``H*W * softmax_hw(mean_c |F| / t)``: ``(N, C, H, W)`` to
        ``(N, 1, H, W)``."""
        num_imgs, _, height, width = feat.shape
        attention = height * width * F.softmax(
            feat.abs().mean(1).reshape(num_imgs, -1) / self.temperature,
            dim=1)
        return attention.reshape(num_imgs, 1, height, width)
