from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        check_level_channels,
                                        check_positive, pair_levels)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class CSAKDAttentionAlignmentLoss(nn.Module):
    r"""Attention-guided knowledge alignment (AGKA) of CSAKD.

    `Knowledge Distillation via Cross Supervising with Attention for Remote
    Sensing Object Detection` (Zhan et al., BMVC). A spatial attention map
    from a teacher query and a student key tells the student where the
    teacher's features matter; the attended student features are aligned to
    the teacher's. Per level :math:`l`, with the adapted student map
    :math:`\phi_l(s_l)` and the teacher map :math:`t_l`:

    .. math::
        q_l = \mathrm{ReLU}(W^q_l * t_l), \quad
        k_l = \mathrm{ReLU}(W^k_l * \phi_l(s_l)), \quad
        A_l = \mathrm{sigmoid}\Big(\sum_{c'} q_l \odot k_l\Big)
            \in \mathbb{R}^{N \times 1 \times H_l \times W_l},

    .. math::
        s'_l = \phi_l(s_l) + A_l \odot \phi_l(s_l), \qquad
        \mathcal{L}_{AGKA} = \sum_l
            \frac{\lVert Z^T_l - s'_l \rVert_2^2}{N H_l W_l},

    where :math:`W^q_l, W^k_l` are 1x1 convolutions (with bias) to
    :math:`C'_l = C_l / \mathrm{reduction}` channels, trained with the
    student and used in training only, and :math:`Z^T_l = t_l` (or
    :math:`t_l + A_l \odot t_l` with ``attend_teacher=True``). The squared
    norm sums over channels, so the loss is a per-position distance that
    grows with :math:`C_l`; ``normalizer='elements'`` also divides by
    :math:`C_l` (a plain MSE), for wide necks where :math:`\beta = 1` would
    swamp the detection losses. Everything runs in fp32, also under AMP
    autocast.

    Args:
        in_channels (int | Sequence[int]): teacher channels :math:`C_l` per
            level (the student maps are adapted to them); an int is one
            level.
        reduction (int): :math:`C_l / C'_l`. Defaults to 4.
        attend_teacher (bool): apply the attention to the teacher map too.
            Defaults to False.
        normalizer (str): ``'positions'`` (:math:`N H_l W_l`, the formula
            above) or ``'elements'`` (:math:`N C_l H_l W_l`). Defaults to
            ``'positions'``.
        loss_weight (float): :math:`\beta`. Defaults to 1.0.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 reduction: int = 4,
                 attend_teacher: bool = False,
                 normalizer: str = 'positions',
                 loss_weight: float = 1.0):
        super().__init__()
        name = type(self).__name__
        check_positive(name, 'reduction', reduction)
        check_choice(name, 'normalizer', normalizer,
                     ('positions', 'elements'))
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        for level, channels in enumerate(in_channels):
            if channels < reduction:
                raise MMRSKDError(
                    f'{name}: in_channels[{level}]={channels} is smaller '
                    f'than reduction={reduction}; lower reduction')
        self.in_channels = list(in_channels)
        self.queries = nn.ModuleList(
            self._projection(c, c // reduction) for c in self.in_channels)
        self.keys = nn.ModuleList(
            self._projection(c, c // reduction) for c in self.in_channels)
        self.attend_teacher = attend_teacher
        self.normalizer = normalizer
        self.loss_weight = loss_weight

    @staticmethod
    def _projection(in_channels: int, out_channels: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))

    def attention(self, level: int, feat_S: Tensor, feat_T: Tensor) -> Tensor:
        """:math:`A_l`, ``(N, 1, H, W)`` in (0, 1), from ``(N, C_l, H, W)``
        student (adapted) and teacher maps of ``level``."""
        query = self.queries[level](feat_T)
        key = self.keys[level](feat_S)
        return (query * key).sum(dim=1, keepdim=True).sigmoid()

    def forward(self, preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): adapted student maps
                :math:`\\phi_l(s_l)`, ``(N, C_l, H_l, W_l)`` per level.
            preds_T (Tensor | Sequence[Tensor]): teacher maps, same shapes.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        levels_S, levels_T = self._levels(preds_S, preds_T)
        # autocast would run the query/key convs in half precision
        with torch.autocast(levels_S[0].device.type, enabled=False):
            loss = levels_S[0].new_zeros(())
            for level, (feat_S, feat_T) in enumerate(zip(levels_S,
                                                         levels_T)):
                attention = self.attention(level, feat_S, feat_T)
                attended_S = feat_S + attention * feat_S
                target = feat_T + attention * feat_T \
                    if self.attend_teacher else feat_T
                squared_error = (target - attended_S).square()
                divisor = squared_error.numel()
                if self.normalizer == 'positions':
                    divisor //= feat_S.shape[1]
                loss = loss + squared_error.sum() / divisor
        return self.loss_weight * loss

    @torch.no_grad()
    def kd_maps(self, preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor) -> Dict[str, List[Tensor]]:
        """The attention :math:`A_l` of every level, for visualisation;
        takes the arguments of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: ``'attention'``: one ``(N, H_l, W_l)``
            map in (0, 1) per level.
        """
        levels_S, levels_T = self._levels(preds_S, preds_T)
        with torch.autocast(levels_S[0].device.type, enabled=False):
            return dict(attention=[
                self.attention(level, feat_S, feat_T)[:, 0]
                for level, (feat_S, feat_T) in enumerate(
                    zip(levels_S, levels_T))
            ])

    def _levels(self, preds_S: MultiLevelTensor, preds_T: MultiLevelTensor
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """fp32 student and teacher levels, ``(N, C_l, H_l, W_l)`` with the
        built ``in_channels``."""
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        check_level_channels(name, levels_S, self.in_channels,
                             'the teacher neck channels per level')
        return levels_S, levels_T
