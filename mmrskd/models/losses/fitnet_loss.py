from typing import Optional

import torch
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        pair_levels, per_level)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class FitNetLoss(nn.Module):
    r"""Feature imitation (hint) loss of FitNets, with an optional mask.

    `FitNets: Hints for Thin Deep Nets <https://arxiv.org/abs/1412.6550>`_
    (Romero et al., ICLR 2015). For levels :math:`l` with features
    :math:`S_l, T_l` of shape ``(N, C, H, W)`` and a spatial weight
    :math:`m_l` (all ones without ``mask``):

    .. math::
        \mathcal{L} = \sum_l \frac{1}{Z_l} \sum_{n,c,h,w}
            m_{l,n,h,w} \, (S_{l,n,c,h,w} - T_{l,n,c,h,w})^2

    with :math:`Z_l = N` for ``normalize='none'`` (squared error summed per
    image, as mmrazor's ``L2Loss`` and FGD do) and :math:`Z_l = \sum m_l`
    over all ``N*C*H*W`` broadcast positions for ``normalize='level'`` (the
    masked mean of each level), so large high-resolution levels do not
    dominate the sum.

    Args:
        normalize (str): ``'none'`` or ``'level'``. Defaults to ``'none'``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, normalize: str = 'none', loss_weight: float = 1.0):
        super().__init__()
        check_choice(type(self).__name__, 'normalize', normalize,
                     ('none', 'level'))
        self.normalize = normalize
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                mask: Optional[MultiLevelTensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student features
                ``(N, C, H, W)`` (any shape with the batch dim first),
                one tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.
            mask (Tensor | Sequence[Tensor], optional): per-level weights
                broadcastable to the features, e.g. ``(N, 1, H, W)``
                foreground masks; ``(N, H, W)`` is read as ``(N, 1, H, W)``.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        masks = per_level(name, 'mask', mask, len(levels_S))
        loss = levels_S[0].new_zeros(())
        for level, (pred_S, pred_T, level_mask) in enumerate(
                zip(levels_S, levels_T, masks)):
            sq_error = (pred_S - pred_T)**2
            if level_mask is None:
                level_loss = sq_error.sum()
                mask_total = sq_error.new_tensor(sq_error.numel())
            else:
                level_mask = self._broadcast_mask(level, level_mask, sq_error)
                level_loss = (level_mask * sq_error).sum()
                mask_total = level_mask.sum()
            if self.normalize == 'level':
                # a zero mask leaves a zero numerator; eps keeps it finite
                level_loss = level_loss / mask_total.clamp_min(
                    torch.finfo(torch.float32).eps)
            else:
                level_loss = level_loss / sq_error.shape[0]
            loss = loss + level_loss
        return self.loss_weight * loss

    def _broadcast_mask(self, level: int, mask: Tensor,
                        sq_error: Tensor) -> Tensor:
        if mask.dim() == sq_error.dim() - 1:
            mask = mask.unsqueeze(1)
        try:
            return mask.expand_as(sq_error)
        except RuntimeError:
            raise MMRSKDError(
                f'{type(self).__name__}: level {level} mask of shape '
                f'{tuple(mask.shape)} does not broadcast to the features '
                f'{tuple(sq_error.shape)}; pass (N, 1, H, W) masks of the '
                'level size') from None
