from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrskd.models.layers.cross_level_fusion_block import \
    CrossLevelFusionBlock
from mmrskd.models.losses.utils import check_choice, check_positive
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


def _per_level(name: str, arg: str, value: Union[int, Sequence[int]],
               num_levels: int) -> List[int]:
    if isinstance(value, int):
        return [value] * num_levels
    if len(value) != num_levels:
        raise MMRSKDError(f'{name}: {arg} has {len(value)} entries for '
                          f'num_levels={num_levels}; give one per level or '
                          'a single int')
    return list(value)


def _align(pred: Tensor, target: Tensor):
    """Average-pool the larger of two maps to the smaller's size."""
    if pred.shape[-2:] == target.shape[-2:]:
        return pred, target
    if pred.shape[-2] * pred.shape[-1] > target.shape[-2] * target.shape[-1]:
        return F.adaptive_avg_pool2d(pred, target.shape[-2:]), target
    return pred, F.adaptive_avg_pool2d(target, pred.shape[-2:])


@MODELS.register_module()
class LTDCCDLoss(nn.Module):
    r"""LTD's cross-layer calibration distillation (CCD) with local implicit
    calibration (LIC).

    `Bridging the Gap Between Cumbersome and Light Detectors via
    Layer-Calibration and Task-Disentangle Distillation in Remote Sensing
    Imagery <https://doi.org/10.1109/TGRS.2023.3241342>`_ (TGRS 2023).
    Student pyramid levels :math:`F^l_S` (``in_channels``) are mapped to
    teacher-shaped outputs :math:`O^l` (``out_channels``) by one
    :class:`CrossLevelFusionBlock` per level, whose output convolution is
    LIC (a deformable 3x3 conv). Two ways to bind student and teacher
    levels (``binding``):

    * ``'fusion'`` (the authors' code): a ReviewKD-style chain from the
      coarsest level down; each level's output mixes in, through learned
      position-wise gates, the residual of all coarser student levels, so
      a student level is calibrated against its teacher level with
      knowledge from several layers (implicit binding).
      :math:`\mathcal{L}_{bind} = \sum_l \mathrm{MSE}(O^l, F^l_T)`.
    * ``'inner_product'`` (the paper's explicit binding, which the code
      does not contain; SemCKD-style): each level is calibrated on its own
      and bound to every teacher level :math:`t` with per-image weights
      :math:`\alpha_{n,l,t} = \mathrm{softmax}_t(\hat g^l_{S,n} \cdot
      \hat g^t_{T,n} / \tau)`, where :math:`\hat g_n` is row :math:`n` of
      the batch Gram matrix :math:`G = \tilde F \tilde F^\top` (features
      flattened per image), L2-normalised — the global inner products of
      the abstract. SemCKD's learned query/key embeddings of these rows
      are left out so the loss does not depend on a fixed batch size, and
      :math:`\alpha` is detached. :math:`\mathcal{L}_{bind} = \sum_l
      \frac{1}{N} \sum_{n,t} \alpha_{n,l,t}\, \mathrm{MSE}_n(O^l, F^t_T)`,
      the larger map of each pair average-pooled to the smaller's size.

    Plus, per level, the pyramid-pooled term of the authors' code:
    :math:`\sum_k 2^{-k} \mathrm{MSE}(P_{p_k}(X^l), P_{p_k}(F^l_T)) /
    (1 + \sum_k 2^{-k})` over the pool sizes :math:`p_k` smaller than the
    level's height, with :math:`P_p` adaptive average pooling to
    :math:`p \times p` and :math:`X^l` the raw student features (the
    authors' code, marked "to do" there) or the calibrated :math:`O^l`.

    Everything runs in fp32, also under AMP autocast.

    Args:
        in_channels (int | Sequence[int]): student channels per level.
        out_channels (int | Sequence[int]): teacher channels per level.
        mid_channels (int | None): channels of the fusion residual. Defaults
            to the first ``out_channels``.
        num_levels (int): number of pyramid levels. Defaults to 5.
        binding (str): ``'fusion'`` or ``'inner_product'``. Defaults to
            ``'fusion'``.
        binding_temperature (float): :math:`\tau` of ``'inner_product'``.
            Defaults to 1.0 (SemCKD has none).
        pool_sizes (Sequence[int]): pyramid pool sizes; empty disables the
            pooled term. Defaults to ``(4, 2, 1)``.
        pooled_student (str): ``'raw'`` (student features, needs equal
            student and teacher channels) or ``'adapted'`` (the calibrated
            output). Defaults to ``'raw'``.
        norm_cfg (dict): normalisation of the fusion blocks. Defaults to BN.
        loss_weight (float): multiplier of the loss; the released NWPU
            config uses 0.5. Defaults to 1.0.
        with_cp (bool): checkpoint each fusion block, LIC included (see
            :class:`CrossLevelFusionBlock`): the blocks' activations (LIC's
            ``(N, 9 * mid_channels, H * W)`` sampled columns the largest)
            are recomputed in the backward instead of kept; same loss and
            gradients. The recomputation updates the blocks' BN running
            statistics again, which this loss never reads (it runs in
            training only, on batch statistics). Defaults to False.
    """

    BINDINGS = ('fusion', 'inner_product')

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: Union[int, Sequence[int]],
                 mid_channels: Optional[int] = None,
                 num_levels: int = 5,
                 binding: str = 'fusion',
                 binding_temperature: float = 1.0,
                 pool_sizes: Sequence[int] = (4, 2, 1),
                 pooled_student: str = 'raw',
                 norm_cfg: dict = dict(type='BN'),
                 loss_weight: float = 1.0,
                 with_cp: bool = False):
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'binding', binding, self.BINDINGS)
        check_choice(name, 'pooled_student', pooled_student,
                     ('raw', 'adapted'))
        check_positive(name, 'binding_temperature', binding_temperature)
        check_positive(name, 'num_levels', num_levels)
        self.in_channels = _per_level(name, 'in_channels', in_channels,
                                      num_levels)
        self.out_channels = _per_level(name, 'out_channels', out_channels,
                                       num_levels)
        mid_channels = mid_channels or self.out_channels[0]
        if pooled_student == 'raw' and pool_sizes and \
                self.in_channels != self.out_channels:
            raise MMRSKDError(
                f"{name}: pooled_student='raw' compares raw student features "
                f'with the teacher\'s, but in_channels={self.in_channels} '
                f'and out_channels={self.out_channels} differ; set '
                "pooled_student='adapted' or pool_sizes=()")
        self.num_levels = num_levels
        self.binding = binding
        self.binding_temperature = binding_temperature
        self.pool_sizes = tuple(pool_sizes)
        self.pooled_student = pooled_student
        self.loss_weight = loss_weight
        fuse = binding == 'fusion'
        self.blocks = nn.ModuleList(
            CrossLevelFusionBlock(
                self.in_channels[level],
                mid_channels,
                self.out_channels[level],
                fuse=fuse and level < num_levels - 1,
                norm_cfg=norm_cfg,
                with_cp=with_cp) for level in range(num_levels))

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]) -> Tensor:
        """Compute the loss.

        Args:
            student_feats (Sequence[Tensor]): raw student pyramid, finest
                first, ``(N, in_channels[l], H_l, W_l)``.
            teacher_feats (Sequence[Tensor]): teacher pyramid, ``(N,
                out_channels[l], H_l, W_l)``.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        feats_S, feats_T = self._check(student_feats, teacher_feats)
        with torch.autocast(feats_S[0].device.type, enabled=False):
            outputs = self.calibrated_outputs(feats_S)
            if self.binding == 'fusion':
                loss = sum(
                    F.mse_loss(out, feat_T)
                    for out, feat_T in zip(outputs, feats_T))
            else:
                loss = self._inner_product_binding(feats_S, outputs, feats_T)
            pooled = outputs if self.pooled_student == 'adapted' else feats_S
            for pooled_S, feat_T in zip(pooled, feats_T):
                loss = loss + self.pyramid_pooled_loss(pooled_S, feat_T)
        return self.loss_weight * loss

    def calibrated_outputs(self, feats_S: Sequence[Tensor]) -> List[Tensor]:
        """The teacher-shaped outputs :math:`O^l`, finest first."""
        if self.binding == 'inner_product':
            return [block(feat)[0] for block, feat in zip(self.blocks,
                                                          feats_S)]
        outputs = [None] * self.num_levels
        residual = None
        for level in reversed(range(self.num_levels)):
            outputs[level], residual = self.blocks[level](feats_S[level],
                                                          residual)
        return outputs

    def pyramid_pooled_loss(self, feat_S: Tensor, feat_T: Tensor) -> Tensor:
        """Weighted MSE of the ``p x p`` average-pooled maps, ``p`` in
        ``pool_sizes`` below the level height, weights ``2^-k`` normalised
        by ``1 + sum 2^-k``."""
        loss = feat_S.new_zeros(())
        weight, total = 1.0, 1.0
        for size in self.pool_sizes:
            if size >= feat_S.shape[2]:
                continue
            weight /= 2.0
            total += weight
            loss = loss + weight * F.mse_loss(
                F.adaptive_avg_pool2d(feat_S, size),
                F.adaptive_avg_pool2d(feat_T, size))
        return loss / total

    def binding_weights(self, feats_S: Sequence[Tensor],
                        feats_T: Sequence[Tensor]) -> Tensor:
        r"""Detached :math:`\alpha`: ``(N, L_S, L_T)``, summing to 1 over
        the teacher levels."""
        rows_S = torch.stack([self._gram_rows(f) for f in feats_S], dim=1)
        rows_T = torch.stack([self._gram_rows(f) for f in feats_T], dim=1)
        similarity = torch.einsum('nsk,ntk->nst', rows_S, rows_T)
        return F.softmax(similarity / self.binding_temperature, dim=2)

    @staticmethod
    def _gram_rows(feat: Tensor) -> Tensor:
        flat = feat.detach().flatten(1)
        return F.normalize(flat @ flat.t(), dim=1)

    def _inner_product_binding(self, feats_S, outputs, feats_T):
        weights = self.binding_weights(feats_S, feats_T)
        loss = outputs[0].new_zeros(())
        for level_S, out in enumerate(outputs):
            for level_T, feat_T in enumerate(feats_T):
                pred, target = _align(out, feat_T)
                per_image = ((pred - target)**2).flatten(1).mean(1)
                loss = loss + (weights[:, level_S, level_T] *
                               per_image).mean()
        return loss

    def _check(self, student_feats, teacher_feats):
        name = type(self).__name__
        if not isinstance(student_feats, (list, tuple)) or not isinstance(
                teacher_feats, (list, tuple)):
            raise MMRSKDError(
                f'{name}: student_feats/teacher_feats must be lists of '
                'per-level (N, C, H, W) tensors; map whole pyramids (e.g. '
                "student_feats='s_fpn'), not single levels")
        if not len(student_feats) == len(teacher_feats) == self.num_levels:
            raise MMRSKDError(
                f'{name}: got {len(student_feats)} student and '
                f'{len(teacher_feats)} teacher levels for num_levels='
                f'{self.num_levels}; map all levels of both pyramids')
        feats_S, feats_T = [], []
        for level, (feat_S, feat_T) in enumerate(
                zip(student_feats, teacher_feats)):
            expected_S = (self.in_channels[level], *feat_T.shape[2:])
            if feat_S.dim() != 4 or feat_T.dim() != 4 or \
                    feat_S.shape[0] != feat_T.shape[0] or \
                    tuple(feat_S.shape[1:]) != expected_S or \
                    feat_T.shape[1] != self.out_channels[level]:
                raise MMRSKDError(
                    f'{name}: level {level} student {tuple(feat_S.shape)} / '
                    f'teacher {tuple(feat_T.shape)} do not match in_channels='
                    f'{self.in_channels[level]}, out_channels='
                    f'{self.out_channels[level]} and equal N, H, W; check '
                    'the channels in the loss config and the mapped taps')
            feats_S.append(feat_S.float())
            feats_T.append(feat_T.detach().float())
        return feats_S, feats_T
