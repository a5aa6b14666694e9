from typing import Optional, Union

import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        check_positive, match_weight,
                                        pair_levels, per_level, reduce_classes,
                                        softmax_kl_div)
from mmrskd.registry import MODELS


@MODELS.register_module()
class LogitKDLoss(nn.Module):
    r"""Temperature-softened KL divergence between teacher and student logits.

    `Distilling the Knowledge in a Neural Network
    <https://arxiv.org/abs/1503.02531>`_ (Hinton et al., 2015). The class dim
    is dim 1: logits are ``(N, C)`` per sample or ``(N, C, H, W)`` per
    position (dense heads with one prior per position, or any head in
    ``'sigmoid'`` mode).

    * ``mode='softmax'``: :math:`p = \mathrm{softmax}(z / t)` over the
      classes, element-wise term :math:`t^2\, p^T_c \log(p^T_c / p^S_c)`.
    * ``mode='sigmoid'``: each class is an independent binary distribution
      :math:`(\sigma(z_c/t), 1 - \sigma(z_c/t))` with the teacher's as the
      target, term :math:`t^2\, [\mathrm{BCE}(z^S_c/t, p^T_c) -
      \mathrm{BCE}(z^T_c/t, p^T_c)]`, the binary KL for sigmoid-based
      dense detectors (RetinaNet, FCOS, GFL).

    The terms are reduced over the classes (``class_reduction``), multiplied
    by ``weight`` and averaged over positions, or summed and divided by
    ``avg_factor`` when given; levels are summed. ``class_reduction='mean'``
    with ``mode='softmax'`` equals mmdet's ``KnowledgeDistillationKLDivLoss``.

    Args:
        mode (str): ``'softmax'`` or ``'sigmoid'``. Defaults to
            ``'softmax'``.
        T (float): temperature :math:`t`. Defaults to 1.0.
        class_reduction (str): ``'mean'`` or ``'sum'`` over the classes.
            Defaults to ``'mean'``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 mode: str = 'softmax',
                 T: float = 1.0,
                 class_reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'mode', mode, ('softmax', 'sigmoid'))
        check_choice(name, 'class_reduction', class_reduction,
                     ('mean', 'sum'))
        check_positive(name, 'T', T)
        self.mode = mode
        self.T = T
        self.class_reduction = class_reduction
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                weight: Optional[MultiLevelTensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student logits ``(N, C)`` or
                ``(N, C, H, W)``, one tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher logits, same shapes.
            weight (Tensor | Sequence[Tensor], optional): per-position
                weights of the class-reduced loss, ``(N,)`` or ``(N, H, W)``
                (``(N, 1, H, W)`` accepted).
            avg_factor (float | Tensor, optional): divisor of the summed loss
                (e.g. the number of positives over all levels).

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        weights = per_level(name, 'weight', weight, len(levels_S))
        loss = levels_S[0].new_zeros(())
        for logits_S, logits_T, level_weight in zip(levels_S, levels_T,
                                                    weights):
            if self.mode == 'softmax':
                elementwise = softmax_kl_div(logits_S, logits_T, self.T)
            else:
                elementwise = self._sigmoid_kl_div(logits_S, logits_T)
            level_loss = reduce_classes(elementwise, self.class_reduction)
            level_loss = weight_reduce_loss(
                level_loss,
                match_weight(name, level_weight, level_loss),
                avg_factor=avg_factor)
            loss = loss + level_loss
        return self.loss_weight * loss

    def _sigmoid_kl_div(self, logits_S: Tensor, logits_T: Tensor) -> Tensor:
        # BCE(z_S, p_T) - BCE(z_T, p_T) is the binary KL; BCE with logits
        # is stable for saturated logits where log(sigmoid) would be -inf.
        scaled_S, scaled_T = logits_S / self.T, logits_T / self.T
        target = scaled_T.sigmoid()
        cross_entropy = F.binary_cross_entropy_with_logits(
            scaled_S, target, reduction='none')
        entropy = F.binary_cross_entropy_with_logits(
            scaled_T, target, reduction='none')
        return (cross_entropy - entropy) * self.T**2
