"""GGHL's joint optimisation loss (JOL) for one FPN level."""
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses import smooth_l1_loss
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError

TARGET_KEYS = ('heatmap', 'pos_mask', 'bboxes', 'distances', 'orc', 'ratios',
               'area_weights')


def _log1mexp(log_p: Tensor) -> Tensor:
    """``log(1 - exp(log_p))`` for ``log_p < 0``, accurate on both ends."""
    return torch.where(log_p > -0.6931, torch.log(-torch.expm1(log_p)),
                       torch.log1p(-torch.exp(log_p)))


def soft_bce_from_log_probs(log_p: Tensor, target: Tensor) -> Tensor:
    """Elementwise ``BCE(p, target)`` from ``log p``, with finite gradients
    for saturated probabilities (0 or 1), unlike ``log(p)`` of a
    probability that underflowed; logs are clamped at -100 like
    :func:`F.binary_cross_entropy`, which autocast refuses to run."""
    log_p = log_p.clamp(min=-100, max=-1e-30)
    return -(target * log_p + (1 - target) * _log1mexp(log_p))


@MODELS.register_module()
class JOLLoss(nn.Module):
    """Joint optimisation loss of GGHL (Huang et al., TIP 2022).

    Per location, with ``M`` the positive mask, ``gh`` the largest soft class
    target, ``A = area_weight + (1 - M)``, smoothing ``delta`` and ``C``
    classes (``Focal(x, t) = BCE(x, t) * |t - sigmoid(x)|^gamma``):

    ======  ============================================================
    term    per-location value
    ======  ============================================================
    fg      ``M * Focal(obj, t_obj) * (gh + sg(s_loc)) / 2``
    bg      ``(1 - M) * Focal(obj, t_obj)``
    pos     ``sum_{c in GT} M * BCE(sigmoid(cls_c) * s_loc, 1 - delta +
            delta / C) * A``: joint classification-localisation score
    neg     ``sum_{c not in GT} M * BCE(cls_c, delta / C) * A``
    iou     ``M * scale * (1 - GIoU(HBB)) * A * w_dyn``
    obb     ``M * sum_i (a_i - a_i*)^2 * A * w_dyn``
    area    ``M * (r - r*)^2 * A * w_dyn``
    l       ``M * scale * sum SmoothL1(ltrb / s, ltrb* / s) * A * w_dyn``
    ======  ============================================================

    where ``t_obj = M (1 - delta) + delta / 2``, ``scale = bbox_scale_max -
    (bbox_scale_max - 1) * w* h* / img_area`` favours small boxes, ``s_loc =
    exp(-(iou + obb + area errors))``, ``sg`` stops the gradient and the
    dynamic confidence weight is ``w_dyn = (sum_{c in GT} sigmoid(cls_c) +
    gh) / 2``. Each term is summed over the level, divided by the image's
    number of positives on this level (at least 1), averaged over the batch
    and multiplied by its ``*_weight``. GGHL's mixup weight is 1 because
    mmdet's MixUp transform does not produce per-image weights.

    Args:
        label_smooth (float): ``delta``. Defaults to 0.01.
        gamma (float): focal exponent of the objectness loss.
            Defaults to 2.0.
        bbox_scale_max (float): box-loss scale of a zero-area box.
            Defaults to 2.0.
        smooth_l1_beta (float): SmoothL1 transition point. Defaults to 1.0.
        fg_weight, bg_weight, pos_weight, neg_weight, iou_weight,
        obb_weight, area_weight, l_weight (float): term weights; GGHL uses
            2, 2, 1, 1, 1, 1, 16, 0.2.
        reduction (str): ``'mean'`` (normalised as above) or ``'none'``.
    """

    def __init__(self,
                 label_smooth: float = 0.01,
                 gamma: float = 2.0,
                 bbox_scale_max: float = 2.0,
                 smooth_l1_beta: float = 1.0,
                 fg_weight: float = 2.0,
                 bg_weight: float = 2.0,
                 pos_weight: float = 1.0,
                 neg_weight: float = 1.0,
                 iou_weight: float = 1.0,
                 obb_weight: float = 1.0,
                 area_weight: float = 16.0,
                 l_weight: float = 0.2,
                 reduction: str = 'mean') -> None:
        super().__init__()
        if reduction not in ('mean', 'none'):
            raise MMRSKDError(
                f"JOLLoss: reduction='{reduction}' is not supported; use "
                "'mean' or 'none'")
        self.label_smooth = label_smooth
        self.gamma = gamma
        self.bbox_scale_max = bbox_scale_max
        self.smooth_l1_beta = smooth_l1_beta
        self.term_weights = dict(
            fg=fg_weight, bg=bg_weight, pos=pos_weight, neg=neg_weight,
            iou=iou_weight, obb=obb_weight, area=area_weight, l=l_weight)
        self.reduction = reduction

    def focal_objectness(self, objectness: Tensor, target: Tensor) -> Tensor:
        """``BCE(x, t) * |t - sigmoid(x)|^gamma``, elementwise."""
        bce = F.binary_cross_entropy_with_logits(
            objectness, target, reduction='none')
        return bce * (target - objectness.sigmoid()).abs().pow(self.gamma)

    def box_errors(self, pred_bboxes: Tensor, pred_distances: Tensor,
                   pred_orc: Tensor, pred_ratios: Tensor, targets: dict,
                   stride: float, img_area: Union[float, Tensor]
                   ) -> Dict[str, Tensor]:
        """Unweighted per-location box errors (valid where ``pos_mask``).

        Args:
            pred_bboxes (Tensor): (B, N, 4) decoded HBBs, xyxy.
            pred_distances (Tensor): (B, N, 4) decoded ltrb distances.
            pred_orc (Tensor): (B, N, 4) decoded vertex offsets.
            pred_ratios (Tensor): (B, N) decoded area ratios.
            targets (dict): see :meth:`forward`.
            stride (float): stride of the level.
            img_area (float | Tensor): network input area, scalar or (B,).

        Returns:
            dict[str, Tensor]: ``iou``, ``obb``, ``area``, ``l`` (each
            (B, N), ``iou`` and ``l`` include ``scale``), ``scale`` (B, N)
            and ``loc_quality`` ``s_loc`` (B, N).
        """
        gt_bboxes = targets['bboxes'].float()
        gt_wh = (gt_bboxes[..., 2:] - gt_bboxes[..., :2]).clamp(min=0)
        if isinstance(img_area, Tensor) and img_area.dim() == 1:
            img_area = img_area[:, None]
        scale = self.bbox_scale_max - (self.bbox_scale_max - 1) * \
            gt_wh.prod(dim=-1) / img_area
        giou = bbox_overlaps(
            pred_bboxes.float(), gt_bboxes, mode='giou', is_aligned=True)
        iou = scale * (1 - giou)
        obb = (pred_orc.float() - targets['orc'].float()).pow(2).sum(-1)
        area = (pred_ratios.float() - targets['ratios'].float()).pow(2)
        l1 = smooth_l1_loss(
            pred_distances.float() / stride,
            targets['distances'].float() / stride,
            beta=self.smooth_l1_beta,
            reduction='none').sum(-1)
        return dict(
            iou=iou, obb=obb, area=area, l=scale * l1, scale=scale,
            loc_quality=torch.exp(-(iou + obb + area)))

    def forward(self,
                cls_score: Tensor,
                objectness: Tensor,
                pred_bboxes: Tensor,
                pred_distances: Tensor,
                pred_orc: Tensor,
                pred_ratios: Tensor,
                targets: Dict[str, Tensor],
                stride: float,
                img_area: Union[float, Tensor],
                reduction_override: Optional[str] = None
                ) -> Dict[str, Tensor]:
        """Compute the JOL terms of one level.

        Args:
            cls_score (Tensor): (B, N, C) class logits.
            objectness (Tensor): (B, N) objectness logits.
            pred_bboxes (Tensor): (B, N, 4) decoded HBBs, xyxy, pixels.
            pred_distances (Tensor): (B, N, 4) decoded ltrb distances.
            pred_orc (Tensor): (B, N, 4) decoded vertex offsets in [0, 1].
            pred_ratios (Tensor): (B, N) decoded area ratios in [0, 1].
            targets (dict[str, Tensor]): ``heatmap`` (B, N, C) soft class
                targets, ``pos_mask`` (B, N), ``bboxes`` (B, N, 4) xyxy,
                ``distances`` (B, N, 4) ltrb, ``orc`` (B, N, 4), ``ratios``
                (B, N), ``area_weights`` (B, N).
            stride (float): stride of the level.
            img_area (float | Tensor): network input area, scalar or (B,).
            reduction_override (str, optional): ``'none'`` or ``'mean'``.

        Returns:
            dict[str, Tensor]: ``loss_fg``, ``loss_bg``, ``loss_pos``,
            ``loss_neg``, ``loss_iou``, ``loss_obb``, ``loss_area``,
            ``loss_l``.
            With ``'mean'`` each is a scalar; with ``'none'`` each is the
            (B, N) weighted per-location value (``*_weight`` applied, not yet
            normalised), and ``box_errors`` and ``num_pos`` (B,) are added,
            so that ``loss = sum_b sum_n term / num_pos[b] / B``.
        """
        missing = [k for k in TARGET_KEYS if k not in targets]
        if missing:
            raise MMRSKDError(
                f'JOLLoss: targets lack {missing}; pass the per-level dict '
                'built by GGHLHead.get_targets')
        reduction = reduction_override or self.reduction
        cls_score = cls_score.float()
        objectness = objectness.float()
        heatmap = targets['heatmap'].float()
        pos_mask = targets['pos_mask'].float()
        num_classes = cls_score.size(-1)
        delta = self.label_smooth

        gh = heatmap.max(dim=-1).values
        gt_classes = (heatmap > 0).float()
        area_weights = targets['area_weights'].float() + (1 - pos_mask)
        obj_target = pos_mask * (1 - delta) + delta / 2
        errors = self.box_errors(pred_bboxes, pred_distances, pred_orc,
                                 pred_ratios, targets, stride, img_area)
        loc_quality = errors['loc_quality']

        obj_loss = self.focal_objectness(objectness, obj_target)
        cls_prob = cls_score.sigmoid()
        joint_score = cls_prob * loc_quality[..., None]
        pos_target = joint_score.new_full(joint_score.shape,
                                          1 - delta + delta / num_classes)
        # log(sigmoid(cls) * s_loc), finite for saturated class logits
        log_joint = F.logsigmoid(cls_score) + \
            loc_quality.clamp(min=1e-30).log()[..., None]
        pos_bce = soft_bce_from_log_probs(log_joint, pos_target)
        neg_bce = F.binary_cross_entropy_with_logits(
            cls_score,
            joint_score.new_full(cls_score.shape, delta / num_classes),
            reduction='none')
        dynamic_weight = ((gt_classes * cls_prob).sum(-1) + gh) / 2
        box_weight = pos_mask * area_weights * dynamic_weight

        terms = dict(
            fg=pos_mask * obj_loss * (gh + loc_quality.detach()) / 2,
            bg=(1 - pos_mask) * obj_loss,
            pos=pos_mask * area_weights * (gt_classes * pos_bce).sum(-1),
            neg=pos_mask * area_weights *
            ((1 - gt_classes) * neg_bce).sum(-1),
            iou=box_weight * errors['iou'],
            obb=box_weight * errors['obb'],
            area=box_weight * errors['area'],
            l=box_weight * errors['l'])
        terms = {
            f'loss_{name}': self.term_weights[name] * value
            for name, value in terms.items()
        }
        terms.update(box_errors=errors,
                     num_pos=pos_mask.sum(dim=-1).clamp(min=1))
        return terms if reduction == 'none' else self.reduce(terms)

    @staticmethod
    def reduce(terms: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Normalise the ``reduction='none'`` output of one level.

        Args:
            terms (dict[str, Tensor]): ``loss_<term>`` (B, N) and
                ``num_pos`` (B,).

        Returns:
            dict[str, Tensor]: scalar ``loss_<term>``: the sum over
            locations divided by ``num_pos`` per image, averaged over images.
        """
        num_pos = terms['num_pos']
        return {
            name: (value.sum(dim=-1) / num_pos).sum() / num_pos.numel()
            for name, value in terms.items() if name.startswith('loss_')
        }
