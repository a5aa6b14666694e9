import torch.nn.functional as F
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_positive,
                                        pair_levels, standardise_channels)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class PKDLoss(nn.Module):
    r"""Pearson-correlation feature distillation.

    `PKD: General Distillation Framework for Object Detectors via Pearson
    Correlation Coefficient <https://arxiv.org/abs/2207.02039>`_ (Cao et al.,
    NeurIPS 2022). Every channel map is standardised,
    :math:`\hat F = (F - \mu) / \sqrt{\sigma^2 + \epsilon}` (biased variance),
    then

    .. math::
        \mathcal{L} = \sum_l \tfrac{1}{2}\,
            \mathrm{mean}\big[(\hat S_l - \hat T_l)^2\big]
            = \sum_l \big(1 - \bar r_l\big) \quad (\epsilon \to 0),

    where :math:`\bar r_l` is the mean Pearson correlation between student
    and teacher channel maps of level :math:`l`: only the pattern of each
    channel is distilled, not its magnitude, so no adapter is needed when
    teacher and student feature scales differ.

    Args:
        per_sample_norm (bool): standardise each channel of each image over
            ``(H, W)`` (True), or each channel over the whole batch
            ``(N, H, W)`` as mmrazor's ``PKDLoss`` (False). Per-image
            statistics make the loss independent of the batch composition.
            Defaults to True.
        resize_stu (bool): when the spatial sizes differ, bilinearly resize
            the student to the teacher's size (True) or the teacher to the
            student's (False). Defaults to True.
        eps (float): added to the variance. Defaults to 1e-6.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 per_sample_norm: bool = True,
                 resize_stu: bool = True,
                 eps: float = 1e-6,
                 loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'eps', eps)
        self.per_sample_norm = per_sample_norm
        self.resize_stu = resize_stu
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student features
                ``(N, C, H, W)``, one tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features with the
                same ``N, C``; ``H, W`` may differ (see ``resize_stu``).

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(
            name, preds_S, preds_T, same_shape=False)
        loss = levels_S[0].new_zeros(())
        for level, (pred_S, pred_T) in enumerate(zip(levels_S, levels_T)):
            if pred_S.dim() != 4 or pred_S.shape[:2] != pred_T.shape[:2]:
                raise MMRSKDError(
                    f'{name}: level {level} student {tuple(pred_S.shape)} and '
                    f'teacher {tuple(pred_T.shape)} must be (N, C, H, W) with '
                    'the same N and C; add a connector for the student in '
                    "the distiller's connectors")
            if pred_S.shape[2:] != pred_T.shape[2:]:
                if self.resize_stu:
                    pred_S = F.interpolate(
                        pred_S, pred_T.shape[2:], mode='bilinear')
                else:
                    pred_T = F.interpolate(
                        pred_T, pred_S.shape[2:], mode='bilinear')
            loss = loss + F.mse_loss(
                self._standardize(pred_S), self._standardize(pred_T)) / 2
        return self.loss_weight * loss

    def _standardize(self, feat: Tensor) -> Tensor:
        """Zero mean, unit variance per channel map; ``(N, C, H, W)``."""
        if self.per_sample_norm:
            return standardise_channels(feat, self.eps)
        channels_first = feat.transpose(0, 1)
        normed = F.layer_norm(
            channels_first.reshape(feat.shape[1], -1),
            (channels_first[0].numel(), ),
            eps=self.eps)
        return normed.reshape(channels_first.shape).transpose(0, 1)
