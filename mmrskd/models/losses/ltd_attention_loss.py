from typing import Dict, List, Optional, Tuple

import torch
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
        levels_S, levels_T, attention_src = self._levels(
            preds_S, preds_T, feats_S)
        loss = levels_S[0].new_zeros(())
        for pred_S, pred_T, src_S in zip(levels_S, levels_T, attention_src):
            mask = self.attention_mask(src_S, pred_T)
            masked_sum = ((pred_S - pred_T)**2 * mask).sum()
            loss = loss + masked_sum.clamp_min(self.eps).sqrt()
        return self.loss_weight * loss

    @torch.no_grad()
    def kd_maps(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                feats_S: Optional[MultiLevelTensor] = None
                ) -> Dict[str, List[Tensor]]:
        """The mask :math:`M` of every level, for visualisation; takes the
        arguments of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: ``'mask'``: one ``(N, H_l, W_l)`` map
            per level.
        """
        _, levels_T, attention_src = self._levels(preds_S, preds_T, feats_S)
        return dict(mask=[
            self.attention_mask(src_S, pred_T)[:, 0]
            for src_S, pred_T in zip(attention_src, levels_T)
        ])

    def attention_mask(self, feat_S: Tensor, feat_T: Tensor) -> Tensor:
        """:math:`M = (A(F_S) + A(T)) / 2`, ``(N, 1, H, W)``, from
        ``(N, C_S, H, W)`` student and ``(N, C, H, W)`` teacher features."""
        return (self.spatial_attention(feat_S) +
                self.spatial_attention(feat_T)) / 2

    def _levels(self, preds_S: MultiLevelTensor, preds_T: MultiLevelTensor,
                feats_S: Optional[MultiLevelTensor]
                ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Checked fp32 levels: adapted student and teacher
        ``(N, C, H, W)``, and the detached student attention sources
        ``(N, C_S, H, W)``."""
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        if feats_S is None:
            attention_src = [pred.detach() for pred in levels_S]
        else:
            attention_src, _ = pair_levels(name, feats_S, preds_T,
                                           same_shape=False)
            attention_src = [feat.detach() for feat in attention_src]
        for level, (pred_S, src_S) in enumerate(zip(levels_S,
                                                    attention_src)):
            if pred_S.dim() != 4 or src_S.dim() != 4 or \
                    src_S.shape[0] != pred_S.shape[0] or \
                    src_S.shape[2:] != pred_S.shape[2:]:
                raise MMRSKDError(
                    f'{name}: level {level} needs (N, C, H, W) features with '
                    f'the same N, H, W; got preds_S {tuple(pred_S.shape)} and '
                    f'feats_S {tuple(src_S.shape)}')
        return levels_S, levels_T, attention_src

    def spatial_attention(self, feat: Tensor) -> Tensor:
        """``H*W * softmax_hw(mean_c |F| / t)``: ``(N, C, H, W)`` to
        ``(N, 1, H, W)``."""
        num_imgs, _, height, width = feat.shape
        attention = height * width * F.softmax(
            feat.abs().mean(1).reshape(num_imgs, -1) / self.temperature,
            dim=1)
        return attention.reshape(num_imgs, 1, height, width)
