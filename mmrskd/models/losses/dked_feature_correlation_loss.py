"""DKED feature correlation distillation (Huang, Li & Tao, ICASSP 2022)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        pair_levels)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

TEACHER_EMBEDDINGS = ('frozen', 'trainable', 'identity')


def _per_level(value, num_levels: int) -> List:
    if value is None or isinstance(value, int):
        return [value] * num_levels
    return list(value)


@MODELS.register_module()
class DKEDFeatureCorrelationLoss(nn.Module):
    r"""Distil the non-local correlations of backbone features (DKED).

    For one feature map :math:`F` of shape ``(N, C, H, W)`` with ``P = HW``
    positions, the correlation matrix of a non-local block,

    .. math::
        R = \mathrm{softmax}_j\Big(\frac{\theta(F)_i^\top \varphi(F)_j}
            {\sqrt{C'}}\Big) \in \mathbb{R}^{N \times P \times P},

    is computed for teacher and student, and per level

    .. math::
        \mathcal{L} = \frac{1}{N} \sum_n \frac{\|R_T - R_S\|_F^2}{P^2},

    summed over levels. Each row of ``R`` sums to 1, so the loss is at most
    ``2 / P`` per level: raise ``loss_weight`` accordingly (DKED's weight is
    not public).

    Embeddings :math:`\theta, \varphi`. Student and teacher features have
    the same shape ``(N, C, H, W)``: the student's adapter is a connector
    of the distiller (e.g. ``ConvBNConnector`` ``C_S -> C``).

    * ``in_channels=None`` (default): identity on both sides
      (:math:`C' = C`), parameter-free.
    * ``in_channels=C``: trainable 1x1 convs :math:`\theta_S, \varphi_S: C
      \to C'` on the student and, by ``teacher_embedding``, on the teacher:

      - ``'frozen'`` [A]: 1x1 convs :math:`C \to C'` kept at their random
        initialisation (saved with the distiller, so a resumed run uses the
        same ones): a target that cannot drift;
      - ``'trainable'``: the same convs trained by this loss only, as in
        FBKD's non-local connectors. Both sides can then shrink their
        embeddings towards uniform correlations, which makes the loss
        trivially small; watch it when using this mode;
      - ``'identity'``: the teacher's raw correlations (:math:`C' = C` on
        the teacher side).

    Cost: ``O(N P^2 C')`` time and ``N P^2`` floats per correlation matrix
    (twice that with gradients). The last stage of an 800 px input at
    stride 32 has ``P = 625`` (0.4 M entries per image); at stride 16,
    ``P = 2500`` (6.3 M). ``pool_size`` average-pools both features to at
    most that size first (``O(pool^4)``); ``num_samples`` correlates a
    random subset of positions, the same for teacher and student, redrawn
    at every call (``O(num_samples^2)``; the softmax then runs over the
    sampled positions only).

    Args:
        in_channels (int | Sequence[int], optional): ``C`` per level;
            enables the learned embeddings. Defaults to None (identity).
        embed_channels (int | Sequence[int], optional): ``C'`` per level;
            None: ``C // 2`` (a non-local block's bottleneck) [A].
        teacher_embedding (str): ``'frozen'``, ``'trainable'`` or
            ``'identity'``, see above. Defaults to ``'frozen'``.
        pool_size (int | tuple[int, int], optional): largest ``(H, W)``
            correlated. Defaults to None (full resolution).
        num_samples (int, optional): positions sampled per call. Defaults to
            None (all).
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 in_channels: Union[None, int, Sequence[int]] = None,
                 embed_channels: Union[None, int, Sequence[int]] = None,
                 teacher_embedding: str = 'frozen',
                 pool_size: Union[None, int, Tuple[int, int]] = None,
                 num_samples: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'teacher_embedding', teacher_embedding,
                     TEACHER_EMBEDDINGS)
        if pool_size is not None and num_samples is not None:
            raise MMRSKDError(
                f'{name}: pool_size and num_samples both reduce the '
                'positions; set only one of them')
        if isinstance(pool_size, int):
            pool_size = (pool_size, pool_size)
        if pool_size is not None and min(pool_size) < 1 or (
                num_samples is not None and num_samples < 2):
            raise MMRSKDError(
                f'{name}: pool_size={pool_size} / num_samples={num_samples} '
                'must keep at least 2 positions')
        self.teacher_embedding = teacher_embedding
        self.pool_size = pool_size
        self.num_samples = num_samples
        self.loss_weight = loss_weight
        self.learned = in_channels is not None
        self.in_channels = None
        if self.learned:
            self._build_embeddings(in_channels, embed_channels)

    def _build_embeddings(self, in_channels, embed_channels) -> None:
        name = type(self).__name__
        num_levels = 1
        for value in (in_channels, embed_channels):
            if value is not None and not isinstance(value, int):
                num_levels = len(value)
        in_channels = _per_level(in_channels, num_levels)
        embed_channels = _per_level(embed_channels, num_levels)
        if not len(in_channels) == len(embed_channels) == num_levels:
            raise MMRSKDError(
                f'{name}: in_channels and embed_channels must give one '
                'entry per level (or one int)')
        embed_channels = [
            c // 2 if c_embed is None else c_embed
            for c, c_embed in zip(in_channels, embed_channels)
        ]
        if min(embed_channels) < 1:
            raise MMRSKDError(f'{name}: embed_channels={embed_channels} '
                              'must be positive')
        self.in_channels = in_channels

        def embedding_pair(channels, out_channels):
            return nn.ModuleList([
                nn.Conv2d(channels, out_channels, 1),
                nn.Conv2d(channels, out_channels, 1)
            ])

        self.student_embeddings = nn.ModuleList(
            embedding_pair(c, c_embed)
            for c, c_embed in zip(in_channels, embed_channels))
        if self.teacher_embedding != 'identity':
            self.teacher_embeddings = nn.ModuleList(
                embedding_pair(c, c_embed)
                for c, c_embed in zip(in_channels, embed_channels))
            if self.teacher_embedding == 'frozen':
                self.teacher_embeddings.requires_grad_(False)

    def forward(self, preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student features adapted
                to the teacher's shape ``(N, C, H, W)``, one per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        shapes = [tuple(feat.shape) for feat in levels_T]
        if any(len(shape) != 4 for shape in shapes) or (
                self.learned
                and [shape[1] for shape in shapes] != self.in_channels):
            raise MMRSKDError(
                f'{name}: got features {shapes} for in_channels='
                f'{self.in_channels}; map (N, C, H, W) features with one '
                'in_channels entry per level')
        # autocast would run the embeddings and the softmax in half precision
        with torch.autocast(levels_S[0].device.type, enabled=False):
            loss = levels_S[0].new_zeros(())
            for level, (feat_S, feat_T) in enumerate(zip(levels_S,
                                                         levels_T)):
                feat_S, feat_T = self._reduce_positions(feat_S, feat_T)
                corr_S = self._correlation(feat_S, self._embedding(
                    'student', level))
                corr_T = self._correlation(feat_T, self._embedding(
                    'teacher', level))
                num_positions = corr_S.shape[-1]
                loss = loss + (corr_T - corr_S).pow(2).sum(
                    (1, 2)).mean() / num_positions**2
        return self.loss_weight * loss

    def _embedding(self, side: str, level: int) -> Optional[nn.ModuleList]:
        if not self.learned:
            return None
        if side == 'teacher':
            if self.teacher_embedding == 'identity':
                return None
            return self.teacher_embeddings[level]
        return self.student_embeddings[level]

    def _reduce_positions(self, feat_S: Tensor,
                          feat_T: Tensor) -> Tuple[Tensor, Tensor]:
        """Pooled ``(N, C, h, w)`` or sampled ``(N, C, 1, num_samples)``
        features, the same positions for both."""
        height, width = feat_T.shape[2:]
        if self.pool_size is not None:
            size = (min(height, self.pool_size[0]),
                    min(width, self.pool_size[1]))
            if size != (height, width):
                pool = nn.functional.adaptive_avg_pool2d
                return pool(feat_S, size), pool(feat_T, size)
        if self.num_samples is not None and self.num_samples < height * width:
            keep = torch.randperm(
                height * width, device=feat_T.device)[:self.num_samples]
            return (feat_S.flatten(2)[..., keep].unsqueeze(2),
                    feat_T.flatten(2)[..., keep].unsqueeze(2))
        return feat_S, feat_T

    @staticmethod
    def _correlation(feat: Tensor,
                     embedding: Optional[nn.ModuleList]) -> Tensor:
        """Row-softmax non-local correlations ``(N, P, P)`` of
        ``(N, C, H, W)`` features."""
        if embedding is None:
            query = key = feat
        else:
            query, key = embedding[0](feat), embedding[1](feat)
        query, key = query.flatten(2), key.flatten(2)  # (N, C', P)
        logits = torch.bmm(query.transpose(1, 2), key)
        return (logits / math.sqrt(query.shape[1])).softmax(dim=-1)
