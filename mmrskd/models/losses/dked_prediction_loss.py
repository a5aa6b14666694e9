"""DKED prediction distillation of GGHL-layout heads (Huang, Li & Tao,
ICASSP 2022): a teacher-bounded box loss and soft class targets."""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from torch import Tensor

from mmrskd.models.dense_heads.gghl_head import GGHLHead, flatten_level
from mmrskd.models.losses.jol_loss import soft_bce_from_log_probs
from mmrskd.models.losses.utils import check_choice
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

BOX_TERMS = ('iou', 'obb', 'area', 'l')
COMBINE_MODES = ('reweight', 'additive', 'full')
NUM_HEAD_OUTPUTS = 5  # cls, ltrb, vertex offsets, area ratio, objectness


@MODELS.register_module()
class DKEDPredictionLoss(nn.Module):
    r"""Prediction distillation of DKED between two GGHL-layout heads
    (:class:`~mmrskd.models.dense_heads.GGHLHead`: GGHL, LO-Det).

    Both heads are scored by GGHL's joint optimisation loss (JOL) on the
    same targets, the student's label assignment. Per positive location,
    with ``JOL_obb`` the student's JOL box terms (``iou + obb + area + l``,
    weighted as in its detection loss):

    .. math::
        L_{obb} = \begin{cases} JOL_{obb}(r_S, r_{GT}) &
            \text{if } e(r_S) + \delta > e(r_T) \\ 0 & \text{otherwise}
            \end{cases}, \qquad
        L_{loc} = JOL_{obb}(r_S, r_{GT}) + \lambda L_{obb},

    where the gate compares the localisation errors ``e`` of student and
    teacher (JOL's box errors times JOL's term weights, without its
    confidence-dependent location weights, so a confident teacher is not
    judged worse) [A]; and

    .. math::
        L_{cls} = \lambda\, JOL_{cls}(c_S, c_{GT}) +
            (1 - \lambda)\, JOL_{cls}(c_T \to c_S),

    with ``JOL_cls`` JOL's class terms (``pos + neg``) and, in the soft
    term, the teacher's predictions as targets [A]: the student's joint
    score :math:`\sigma(c_S) s^{loc}_S` against the teacher's
    :math:`\sigma(c_T) s^{loc}_T` on the GT classes (``pos``), and
    :math:`\sigma(c_S)` against :math:`\sigma(c_T)` on the other classes
    (``neg``), at positive locations with JOL's weights. With
    ``distill_objectness`` the objectness terms (``fg + bg``, everywhere)
    join the class terms, with :math:`\sigma(o_T)` as the soft target of
    JOL's focal objectness loss. Every term is reduced like JOL (summed,
    divided by the image's positives per level, averaged over images,
    summed over levels).

    The student's detection loss already holds ``JOL_obb(r_S, r_GT)`` and
    ``JOL_cls(c_S, c_GT)`` (weight 1), so ``combine`` says what this loss
    adds [A]:

    * ``'reweight'`` (default): :math:`\lambda L_{obb} + (1 - \lambda)
      (JOL_{cls}(c_T \to c_S) - JOL_{cls}(c_S, c_{GT}))`, so that detection
      loss + this loss equals the paper's ``L_loc + L_cls`` exactly (the
      student's own class term is re-weighted to :math:`\lambda`). The value
      can be negative;
    * ``'additive'``: :math:`\lambda L_{obb} + (1 - \lambda) JOL_{cls}(c_T
      \to c_S)`; the student's hard class term keeps weight 1;
    * ``'full'``: :math:`L_{loc} + L_{cls}`, for a student whose own JOL
      box and class weights are set to 0.

    ``loss_jol`` must match the student head's, or the re-weighting does
    not cancel. The JOL code is GGHLHead's own
    (:meth:`GGHLHead.loss_terms_by_feat` and :meth:`GGHLHead.decode`, which
    read only ``strides``, ``hbb_ratio_thr``, ``prior_generator`` and
    ``loss_jol``), so the teacher is scored exactly like the student.

    Args:
        strides (Sequence[int]): strides of the head levels.
            Defaults to (8, 16, 32).
        hbb_ratio_thr (float): area ratio above which boxes decode to their
            HBB, as in the head. Defaults to 0.9.
        loss_jol (dict): :class:`JOLLoss` config of the student head.
        delta (float): margin :math:`\delta` of the gate. Defaults to 0.0
            [A].
        lam (float): :math:`\lambda` in [0, 1]. Defaults to 0.5 [A].
        combine (str): ``'reweight'``, ``'additive'`` or ``'full'``.
        distill_objectness (bool): count objectness as part of ``c``.
            Defaults to False [A].
        detach_student_quality (bool): stop the soft class term's gradient
            into the student's localisation quality :math:`s^{loc}_S`:
            where the student's joint score is above the teacher's, that
            gradient lowers :math:`s^{loc}_S`, i.e. pulls the student's box
            away from its GT. Defaults to True [A]: on the native pair of
            ``benchmarks/kd_gain.py`` (tuning seeds 0, 1) DKED went from
            losing to the student alone to +2.1, +2.1 mAP with it.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    # GGHLHead's per-location JOL code, reused as it is
    decode = GGHLHead.decode
    loss_terms_by_feat = GGHLHead.loss_terms_by_feat

    def __init__(self,
                 strides: Sequence[int] = (8, 16, 32),
                 hbb_ratio_thr: float = 0.9,
                 loss_jol: Dict = dict(type='JOLLoss'),
                 delta: float = 0.0,
                 lam: float = 0.5,
                 combine: str = 'reweight',
                 distill_objectness: bool = False,
                 detach_student_quality: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'combine', combine, COMBINE_MODES)
        if not 0 <= lam <= 1:
            raise MMRSKDError(f'{name}: lam={lam} must lie in [0, 1]')
        self.strides = tuple(strides)
        self.hbb_ratio_thr = hbb_ratio_thr
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0.5)
        self.loss_jol = MODELS.build(loss_jol)
        self.delta = delta
        self.lam = lam
        self.combine = combine
        self.distill_objectness = distill_objectness
        self.detach_student_quality = detach_student_quality
        self.loss_weight = loss_weight

    @property
    def rescalable(self) -> bool:
        """Whether the distiller may rescale this loss (``grad_balance``):
        not in ``'reweight'``, whose value re-weights the student's own
        detection loss and holds only at multiplier 1."""
        return self.combine != 'reweight'

    def forward(self, head_outs_S: Sequence[List[Tensor]],
                head_outs_T: Sequence[List[Tensor]],
                batch_targets: List[Dict[str, Tensor]]) -> Tensor:
        """Compute the loss.

        Args:
            head_outs_S (Sequence[list[Tensor]]): the student head's raw
                outputs (tap ``student.bbox_head``): ``cls_scores``,
                ``bbox_preds``, ``orc_preds``, ``ratio_preds``,
                ``objectnesses``, each a list of ``(N, k, H_l, W_l)``.
            head_outs_T (Sequence[list[Tensor]]): the teacher's, same
                shapes (tap ``teacher.bbox_head``).
            batch_targets (list[dict]): the student's targets per level
                (tap ``dict(model='student',
                method='bbox_head.get_targets')``).

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        self._check_inputs(head_outs_S, head_outs_T, batch_targets)
        terms_S, _ = self.loss_terms_by_feat(*head_outs_S, None,
                                             batch_targets)
        with torch.no_grad():
            terms_T, _ = self.loss_terms_by_feat(
                *[[x.detach() for x in out] for out in head_outs_T], None,
                batch_targets)
        loss = head_outs_S[0][0].new_zeros((), dtype=torch.float32)
        for level in range(len(self.strides)):
            parts = self._level_parts(
                [out[level] for out in head_outs_S],
                [out[level].detach() for out in head_outs_T],
                terms_S[level], terms_T[level], batch_targets[level])
            # normalised per image by its positives, as JOL is
            loss = loss + self.loss_jol.reduce(
                dict(loss_kd=self._combine(parts),
                     num_pos=terms_S[level]['num_pos']))['loss_kd']
        return self.loss_weight * loss

    def _level_parts(self, outs_S: List[Tensor], outs_T: List[Tensor],
                     terms_S: Dict, terms_T: Dict,
                     targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Per-location ``(N, H*W)`` box terms and hard and soft class
        terms of one level, weighted like JOL, not yet normalised."""
        weights = self.loss_jol.term_weights
        pos_mask = targets['pos_mask'].float()
        errors_S, errors_T = terms_S['box_errors'], terms_T['box_errors']

        jol_box_S = sum(terms_S[f'loss_{k}'] for k in BOX_TERMS)
        error_S = sum(weights[k] * errors_S[k] for k in BOX_TERMS)
        error_T = sum(weights[k] * errors_T[k] for k in BOX_TERMS)
        teacher_better = (error_S + self.delta > error_T).float()
        bounded_box = pos_mask * teacher_better * jol_box_S

        cls_S, cls_T = flatten_level(outs_S[0]).float(), flatten_level(
            outs_T[0]).float()
        gt_classes = (targets['heatmap'] > 0).float()
        area_weights = targets['area_weights'].float() + (1 - pos_mask)
        log_quality_S = errors_S['loc_quality'].clamp(min=1e-30).log()
        if self.detach_student_quality:
            log_quality_S = log_quality_S.detach()
        joint_T = cls_T.sigmoid() * errors_T['loc_quality'][..., None]
        soft_pos = soft_bce_from_log_probs(
            F.logsigmoid(cls_S) + log_quality_S[..., None], joint_T)
        soft_neg = F.binary_cross_entropy_with_logits(
            cls_S, cls_T.sigmoid(), reduction='none')
        cls_weight = pos_mask * area_weights
        soft_cls = cls_weight * (
            weights['pos'] * (gt_classes * soft_pos).sum(-1) +
            weights['neg'] * ((1 - gt_classes) * soft_neg).sum(-1))
        hard_cls = terms_S['loss_pos'] + terms_S['loss_neg']
        if self.distill_objectness:
            obj_S = flatten_level(outs_S[4])[..., 0].float()
            obj_T = flatten_level(outs_T[4])[..., 0].float()
            obj_weight = weights['fg'] * pos_mask + weights['bg'] * (
                1 - pos_mask)
            soft_cls = soft_cls + obj_weight * self.loss_jol.focal_objectness(
                obj_S, obj_T.sigmoid())
            hard_cls = hard_cls + terms_S['loss_fg'] + terms_S['loss_bg']
        return dict(jol_box=jol_box_S, bounded_box=bounded_box,
                    hard_cls=hard_cls, soft_cls=soft_cls)

    def _combine(self, parts: Dict[str, Tensor]) -> Tensor:
        lam = self.lam
        kd = lam * parts['bounded_box']
        if self.combine == 'reweight':
            return kd + (1 - lam) * (parts['soft_cls'] - parts['hard_cls'])
        if self.combine == 'additive':
            return kd + (1 - lam) * parts['soft_cls']
        return parts['jol_box'] + kd + lam * parts['hard_cls'] + (
            1 - lam) * parts['soft_cls']

    def _check_inputs(self, head_outs_S, head_outs_T, batch_targets) -> None:
        name = type(self).__name__
        num_levels = len(self.strides)
        for side, outs in (('head_outs_S', head_outs_S),
                           ('head_outs_T', head_outs_T)):
            if (not isinstance(outs, (tuple, list))
                    or len(outs) != NUM_HEAD_OUTPUTS
                    or any(len(out) != num_levels for out in outs)):
                raise MMRSKDError(
                    f'{name}: {side} must be a GGHLHead output (5 lists of '
                    f'{num_levels} levels, strides={self.strides}); tap '
                    'the whole bbox_head of a GGHL-layout detector')
        for index, (outs_S, outs_T) in enumerate(zip(head_outs_S,
                                                     head_outs_T)):
            for level, (out_S, out_T) in enumerate(zip(outs_S, outs_T)):
                if out_S.shape != out_T.shape:
                    raise MMRSKDError(
                        f'{name}: output {index} level {level} of the '
                        f'student {tuple(out_S.shape)} and teacher '
                        f'{tuple(out_T.shape)} differ; teacher and student '
                        'need the same classes, strides and input')
        if not isinstance(batch_targets, (tuple, list)) or len(
                batch_targets) != num_levels or any(
                    'pos_mask' not in t for t in batch_targets):
            raise MMRSKDError(
                f'{name}: batch_targets must be the {num_levels}-level output '
                'of GGHLHead.get_targets; tap dict(model="student", '
                'method="bbox_head.get_targets")')
        for level, (targets, cls_score) in enumerate(
                zip(batch_targets, head_outs_S[0])):
            num_cells = cls_score.shape[-2] * cls_score.shape[-1]
            if targets['pos_mask'].shape != (cls_score.shape[0], num_cells):
                raise MMRSKDError(
                    f'{name}: level {level} targets of shape '
                    f'{tuple(targets["pos_mask"].shape)} do not fit the '
                    f'{tuple(cls_score.shape)} head output; use the targets '
                    'of the same batch')
