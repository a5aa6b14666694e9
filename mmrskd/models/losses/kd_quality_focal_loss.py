from typing import Optional, Union

import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_positive,
                                        match_weight, pair_levels, per_level)
from mmrskd.registry import MODELS


@MODELS.register_module()
class KDQualityFocalLoss(nn.Module):
    r"""Quality focal loss with the teacher's sigmoid scores as soft targets.

    The soft-label form of QFL (`Generalized Focal Loss
    <https://arxiv.org/abs/2006.04388>`_, Li et al., NeurIPS 2020) used by
    `CrossKD <https://arxiv.org/abs/2306.11369>`_ (Wang et al., CVPR 2024) to
    make (cross-head) student predictions mimic the teacher's. With
    :math:`\sigma = \mathrm{sigmoid}(z^S)` and :math:`y =
    \mathrm{sigmoid}(z^T)`, per position :math:`i` and class :math:`c`

    .. math::
        \mathcal{L} = \frac{1}{A} \sum_i w_i \sum_c
            |y_{ic} - \sigma_{ic}|^\beta \,
            \mathrm{BCE}(z^S_{ic}, y_{ic}),

    with :math:`A` = ``avg_factor`` (the mean over positions without it);
    levels are summed. The modulating factor down-weights classes the
    student already matches, as focal loss does for easy examples.

    Args:
        beta (float): focusing exponent :math:`\beta`; CrossKD uses 1.
            Defaults to 1.0.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'beta', beta)
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                weight: Optional[MultiLevelTensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student classification
                logits ``(N, C)`` or ``(N, C, H, W)`` (class dim 1), one
                tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher logits, same shapes.
            weight (Tensor | Sequence[Tensor], optional): per-position
                weights, ``(N,)`` or ``(N, H, W)`` (``(N, 1, H, W)``
                accepted).
            avg_factor (float | Tensor, optional): divisor of the summed loss.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        weights = per_level(name, 'weight', weight, len(levels_S))
        loss = levels_S[0].new_zeros(())
        for logits_S, logits_T, level_weight in zip(levels_S, levels_T,
                                                    weights):
            soft_target = logits_T.sigmoid()
            # the floor keeps the gradient of |x|**beta finite at x = 0 for
            # beta < 1; it changes the factor by at most 1e-12**beta
            modulator = (logits_S.sigmoid() - soft_target).abs().clamp_min(
                1e-12).pow(self.beta)
            level_loss = (modulator * F.binary_cross_entropy_with_logits(
                logits_S, soft_target, reduction='none')).sum(1)
            loss = loss + weight_reduce_loss(
                level_loss,
                match_weight(name, level_weight, level_loss),
                avg_factor=avg_factor)
        return self.loss_weight * loss
