from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        pair_levels)
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class CSAKDCrossSupervisionLoss(nn.Module):
    r"""Cross supervising with adaptive attention weight modulation (AAWM).

    `Knowledge Distillation via Cross Supervising with Attention for Remote
    Sensing Object Detection` (Zhan et al., BMVC). The adapted student neck
    maps :math:`\phi_l(s_l)` run through the frozen teacher head (the
    distiller's ``cross_forwards``); the resulting cross predictions
    :math:`\hat c_l, \hat b_l` are supervised by the teacher head's own
    predictions :math:`c^T_l, b^T_l`, so the student features learn to be
    read by the teacher's next module ("module-level mentoring"):

    .. math::
        \mathcal{L}_{cross} = \sum_l w_l \big[
            \mathcal{L}_{cls}(\hat c_l, c^T_l)
            + \mathcal{L}_{reg}(\hat b_l, b^T_l) \big],
        \qquad
        w_l = 1 - \mathrm{sigmoid}\Big(\frac{1}{N}\sum_n
            \cos\big(\mathrm{GAP}(t_{l,n}),
                     \mathrm{GAP}(\phi_l(s_{l,n}))\big)\Big),

    where :math:`t_l` is the teacher neck map and :math:`w_l` is detached,
    so levels whose features already agree with the teacher's are
    supervised less. Both terms are summed over positions and divided by
    one normaliser :math:`S` shared by all levels:

    * ``normalizer='teacher_score'``: :math:`S = \max(1, \sum_{l,n,h,w}
      \max_c \sigma(c^T_{l,nchw}))`, a soft count of the teacher's
      detections that stands in for CrossKD's number of assigned positives
      (no label assignment needed); the box term weights each position by
      the same teacher score (CrossKD).
    * ``normalizer='positions'``: :math:`S` = the number of positions, the
      box term unweighted.

    Box predictions (``reg_mode``):

    * ``'distribution'``: per-side bin logits ``(N, 4 * bins, H, W)``
      (GFL, YOLOv8 DFL), compared by ``loss_reg`` (default :class:`LDLoss`,
      KL summed over bins, T=1, weight 4 as CrossKD's GFL) and averaged over
      the four sides.
    * ``'distance'``: side distances ``(N, 4, H, W)`` (l, t, r, b; RTMDet,
      FCOS), turned into boxes around a shared point and compared by an
      mmdet IoU-type loss (e.g. ``mmdet.GIoULoss``; IoU is translation
      invariant, so the point is irrelevant).

    Args:
        loss_cls (dict): classification mimic loss with the signature
            ``(preds_S, preds_T, weight=None, avg_factor=None)``. Defaults to
            ``KDQualityFocalLoss(beta=1)`` (CrossKD).
        loss_reg (dict): box mimic loss (see ``reg_mode``). Defaults to
            ``LDLoss(T=1, reg_max=15, class_reduction='sum', loss_weight=4)``,
            i.e. YOLOv8's 16 bins.
        reg_mode (str): ``'distribution'`` or ``'distance'``. Defaults to
            ``'distribution'``.
        normalizer (str): ``'teacher_score'`` or ``'positions'``. Defaults to
            ``'teacher_score'``.
        aawm (bool): weight the levels by AAWM (needs ``feats_S`` and
            ``feats_T``); False weights every level 1. Defaults to True.
        loss_weight (float): :math:`\alpha`. Defaults to 1.0.
    """

    def __init__(self,
                 loss_cls: dict = dict(type='KDQualityFocalLoss', beta=1.0),
                 loss_reg: dict = dict(
                     type='LDLoss',
                     T=1.0,
                     reg_max=15,
                     class_reduction='sum',
                     loss_weight=4.0),
                 reg_mode: str = 'distribution',
                 normalizer: str = 'teacher_score',
                 aawm: bool = True,
                 loss_weight: float = 1.0):
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'reg_mode', reg_mode, ('distribution', 'distance'))
        check_choice(name, 'normalizer', normalizer,
                     ('teacher_score', 'positions'))
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_reg = MODELS.build(loss_reg)
        self.reg_mode = reg_mode
        self.normalizer = normalizer
        self.aawm = aawm
        self.loss_weight = loss_weight

    def forward(self,
                cls_S: MultiLevelTensor,
                cls_T: MultiLevelTensor,
                reg_S: MultiLevelTensor,
                reg_T: MultiLevelTensor,
                feats_S: Optional[MultiLevelTensor] = None,
                feats_T: Optional[MultiLevelTensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            cls_S (Tensor | Sequence[Tensor]): class logits of the teacher
                head run on the adapted student features, ``(N, C, H_l,
                W_l)`` per level.
            cls_T (Tensor | Sequence[Tensor]): the teacher head's class
                logits, same shapes.
            reg_S (Tensor | Sequence[Tensor]): cross box predictions,
                ``(N, 4 * bins, H_l, W_l)`` or ``(N, 4, H_l, W_l)`` (see
                ``reg_mode``).
            reg_T (Tensor | Sequence[Tensor]): the teacher's, same shapes.
            feats_S (Tensor | Sequence[Tensor], optional): adapted student
                neck maps :math:`\\phi_l(s_l)`, ``(N, C_l, H_l, W_l)``; for
                AAWM.
            feats_T (Tensor | Sequence[Tensor], optional): teacher neck
                maps, same shapes; for AAWM.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_cls_S, levels_cls_T = pair_levels(name, cls_S, cls_T)
        levels_reg_S, levels_reg_T = pair_levels(name, reg_S, reg_T)
        if len(levels_reg_S) != len(levels_cls_S) or any(
                r.shape[0] != c.shape[0] or r.shape[2:] != c.shape[2:]
                for r, c in zip(levels_reg_S, levels_cls_S)):
            shapes_reg = [tuple(r.shape) for r in levels_reg_S]
            shapes_cls = [tuple(c.shape) for c in levels_cls_S]
            raise MMRSKDError(
                f'{name}: box predictions {shapes_reg} do not match the class '
                f'logits {shapes_cls} level by level; map cls_* and reg_* to '
                'outputs of the same head')
        if self.aawm:
            if feats_S is None or feats_T is None:
                raise MMRSKDError(
                    f'{name}: aawm=True needs feats_S (adapted student neck) '
                    'and feats_T (teacher neck) in loss_mappings, or set '
                    'aawm=False')
            level_weights = self.level_weights(feats_S, feats_T)
            if len(level_weights) != len(levels_cls_S):
                raise MMRSKDError(
                    f'{name}: feats_S/feats_T have {len(level_weights)} '
                    f'levels but the predictions {len(levels_cls_S)}; map '
                    'the neck levels the head reads')
        else:
            level_weights = levels_cls_S[0].new_ones(len(levels_cls_S))

        scores = [logits.sigmoid().amax(dim=1) for logits in levels_cls_T]
        if self.normalizer == 'teacher_score':
            avg_factor = sum(s.sum() for s in scores).clamp(min=1)
            reg_weights = scores
        else:
            avg_factor = float(sum(s.numel() for s in scores))
            reg_weights = [torch.ones_like(s) for s in scores]

        loss = levels_cls_S[0].new_zeros(())
        for level_weight, logits_S, logits_T, box_S, box_T, weight in zip(
                level_weights, levels_cls_S, levels_cls_T, levels_reg_S,
                levels_reg_T, reg_weights):
            loss_cls = self.loss_cls(logits_S, logits_T,
                                     avg_factor=avg_factor)
            loss_reg = self._reg_term(box_S, box_T, weight, avg_factor)
            loss = loss + level_weight * (loss_cls + loss_reg)
        return self.loss_weight * loss

    @staticmethod
    def level_weights(feats_S: MultiLevelTensor,
                      feats_T: MultiLevelTensor) -> Tensor:
        """AAWM weights :math:`w_l = 1 - \\mathrm{sigmoid}(a_l)`, ``a_l`` the
        batch mean of the cosine between the channel GAP vectors.

        Args:
            feats_S (Tensor | Sequence[Tensor]): ``(N, C_l, H_l, W_l)``.
            feats_T (Tensor | Sequence[Tensor]): same shapes.

        Returns:
            Tensor: ``(num_levels, )``, detached, in
            :math:`[1 - \\sigma(1), 1 - \\sigma(-1)] \\approx [0.27, 0.73]`.
        """
        levels_S, levels_T = pair_levels('CSAKDCrossSupervisionLoss',
                                         feats_S, feats_T)
        weights = []
        for feat_S, feat_T in zip(levels_S, levels_T):
            if feat_S.dim() != 4:
                raise MMRSKDError(
                    'CSAKDCrossSupervisionLoss: feats_S/feats_T must be '
                    f'(N, C, H, W) maps, got {tuple(feat_S.shape)}')
            agreement = F.cosine_similarity(
                feat_S.detach().mean(dim=(2, 3)), feat_T.mean(dim=(2, 3)),
                dim=1).mean()
            weights.append(1 - agreement.sigmoid())
        return torch.stack(weights)

    def _reg_term(self, box_S: Tensor, box_T: Tensor, weight: Tensor,
                  avg_factor) -> Tensor:
        """Box mimic loss of one level; ``weight`` is ``(N, H, W)``."""
        if self.reg_mode == 'distribution':
            # LDLoss weights each side by its position's weight; dividing by
            # 4 S averages the four sides
            return self.loss_reg(
                box_S, box_T, weight=weight, avg_factor=4 * avg_factor)
        if box_S.shape[1] != 4:
            raise MMRSKDError(
                f'{type(self).__name__}: reg_mode="distance" takes (N, 4, H, '
                f'W) side distances, got {tuple(box_S.shape)}; map the '
                'head\'s distance output or use reg_mode="distribution"')
        return self.loss_reg(
            self._boxes_around_origin(box_S),
            self._boxes_around_origin(box_T),
            weight=weight.reshape(-1),
            avg_factor=avg_factor)

    @staticmethod
    def _boxes_around_origin(distances: Tensor) -> Tensor:
        """``(N, 4, H, W)`` (l, t, r, b) -> ``(N * H * W, 4)`` x1y1x2y2 boxes
        around the point (0, 0)."""
        rows = distances.permute(0, 2, 3, 1).reshape(-1, 4)
        return torch.cat([-rows[:, :2], rows[:, 2:]], dim=1)
