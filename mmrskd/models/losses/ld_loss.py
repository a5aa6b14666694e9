from typing import Optional, Union

from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        check_positive, pair_levels, per_level,
                                        reduce_classes, softmax_kl_div)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class LDLoss(nn.Module):
    r"""Localization distillation on general (GFL/DFL) box distributions.

    `Localization Distillation for Dense Object Detection
    <https://arxiv.org/abs/2102.12252>`_ (Zheng et al., CVPR 2022). Each box
    side :math:`e \in \{l, t, r, b\}` is a discrete distribution over
    ``reg_max + 1`` bins; with temperature :math:`t`

    .. math::
        \mathcal{L} = \frac{1}{A} \sum_{i, e} w_i \, t^2
            \operatorname{red}_k \Big[ p^T_{iek} \log
            \frac{p^T_{iek}}{p^S_{iek}} \Big],
        \quad p = \mathrm{softmax}_k(z / t),

    where :math:`\operatorname{red}_k` is the mean (mmdet's LD, default) or
    sum over bins and :math:`A` is ``avg_factor`` (the mean over
    box sides without it). Accepted layouts per level:

    * ``(M, 4 * (reg_max + 1))``: one row per box/prior, ``weight`` ``(M,)``
      (shared by its four sides) or ``(4 * M,)``;
    * ``(M * 4, reg_max + 1)``: one row per side (mmdet ``LDHead``),
      ``weight`` ``(M * 4,)``;
    * ``(N, 4 * (reg_max + 1), H, W)``: a GFL head's dense ``bbox_pred``,
      ``weight`` ``(N, H, W)`` or ``(N, 1, H, W)``.

    Args:
        T (float): temperature :math:`t`. Defaults to 10 (the LD paper).
        reg_max (int): largest bin index; GFL uses 16. Defaults to 16.
        class_reduction (str): ``'mean'`` or ``'sum'`` over bins. Defaults to
            ``'mean'``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 T: float = 10.0,
                 reg_max: int = 16,
                 class_reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        name = type(self).__name__
        check_positive(name, 'T', T)
        check_positive(name, 'reg_max', reg_max)
        check_choice(name, 'class_reduction', class_reduction,
                     ('mean', 'sum'))
        self.T = T
        self.reg_max = reg_max
        self.class_reduction = class_reduction
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                weight: Optional[MultiLevelTensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student distribution logits
                in one of the layouts above, one tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher logits, same shapes.
            weight (Tensor | Sequence[Tensor], optional): per-box weights.
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
            rows_S, rows_T = self._to_rows(logits_S), self._to_rows(logits_T)
            level_loss = reduce_classes(
                softmax_kl_div(rows_S, rows_T, self.T), self.class_reduction)
            level_weight = self._weight_rows(level_weight, logits_S,
                                             rows_S.shape[0])
            loss = loss + weight_reduce_loss(
                level_loss, level_weight, avg_factor=avg_factor)
        return self.loss_weight * loss

    def _to_rows(self, logits: Tensor) -> Tensor:
        """Reshape any accepted layout to ``(num_sides, reg_max + 1)``."""
        bins = self.reg_max + 1
        if logits.dim() == 2 and logits.shape[1] in (bins, 4 * bins):
            return logits.reshape(-1, bins)
        if logits.dim() == 4 and logits.shape[1] == 4 * bins:
            return logits.permute(0, 2, 3, 1).reshape(-1, bins)
        raise MMRSKDError(
            f'{type(self).__name__}: predictions of shape '
            f'{tuple(logits.shape)} match no layout for reg_max='
            f'{self.reg_max}; expected (M, {4 * bins}), (M*4, {bins}) or '
            f'(N, {4 * bins}, H, W), or set reg_max to the head\'s')

    def _weight_rows(self, weight: Optional[Tensor], logits: Tensor,
                     num_rows: int) -> Optional[Tensor]:
        """Flatten a per-box or per-position weight to one per box side."""
        if weight is None:
            return None
        dense = logits.dim() == 4
        if dense and weight.dim() == 4 and weight.shape[1] == 1:
            weight = weight.squeeze(1)
        positions = (logits.shape[0], *logits.shape[2:])
        fits = weight.shape == positions if dense else weight.dim() == 1
        weight = weight.reshape(-1)
        if weight.numel() * 4 == num_rows:
            weight = weight.repeat_interleave(4)
        if not fits or weight.numel() != num_rows:
            raise MMRSKDError(
                f'{type(self).__name__}: weight has {weight.numel()} entries '
                f'for {num_rows // 4} boxes of predictions of shape '
                f'{tuple(logits.shape)}; pass one weight per box (or per '
                'box side)')
        return weight
