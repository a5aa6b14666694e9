from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrskd.models.losses.utils import (as_levels, check_choice,
                                        check_positive, pair_levels)
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError

# the released config (Molly6/LTD configs/all_gfl18-101.py)
LTD_TERMS = dict(
    loss_ld=dict(task='reg', region='pos', T=10, weight_temperature=5,
                 loss_weight=0.025),
    loss_ld_vlr=dict(task='reg', region='vlr', T=10, weight_temperature=5,
                     loss_weight=0.025),
    loss_kd=dict(task='cls', region='pos', T=2, loss_weight=0.5),
    loss_kd_vlr=dict(task='cls', region='vlr', T=2, loss_weight=0.5))


@MODELS.register_module()
class LTDTASDLoss(nn.Module):
    r"""LTD's task-aware spatial disentangle distillation (TASD): named
    terms, each a task distilled on a region of the priors.

    `Bridging the Gap Between Cumbersome and Light Detectors via
    Layer-Calibration and Task-Disentangle Distillation in Remote Sensing
    Imagery <https://doi.org/10.1109/TGRS.2023.3241342>`_ (TGRS 2023),
    ``TASDHead`` of the authors' code. Classification and localisation
    knowledge are distilled separately, each on its own region; the four
    terms of the released config (the default ``terms``):

    ===============  ========  ==========  ====  ==========================
    term             ``task``  ``region``  T     weight
    ===============  ========  ==========  ====  ==========================
    ``loss_ld``      reg       pos         10    0.025, teacher-softmax
    ``loss_ld_vlr``  reg       vlr         10    0.025, teacher-softmax
    ``loss_kd``      cls       pos         2     0.5
    ``loss_kd_vlr``  cls       vlr         2     0.5
    ===============  ========  ==========  ====  ==========================

    * ``task='reg'``: KL divergence (:class:`LDLoss`, mean over bins,
      :math:`\times T^2`) between the student's and the teacher's box-side
      distributions (GFL/DFL ``bbox_pred``, ``4 * (reg_max + 1)`` logits per
      prior); ``task='cls'``: KL divergence (:class:`LogitKDLoss`, softmax
      over the classes, mean, :math:`\times T^2`) of the class logits.
    * ``region``: see :class:`TASDRegionAssigner` (``'pos'``, ``'vlr'``,
      and for the task-specific variant the code does not contain,
      ``'gt_center'`` and ``'teacher_score'``, the latter ``cls`` only).
      Each region is assigned once per forward, whatever the number of
      terms on it. The released code distils the classification on the
      VLR too.
    * Per level, the selected rows (all images) are summed, optionally
      weighted by :math:`K\, \mathrm{softmax}_i(u_i / t_w)` over the
      level's :math:`K` rows with :math:`u` the teacher's logits summed over
      the bins (``reg``) or their maximum over the classes (``cls``), and
      divided by ``avg_factor``; levels are summed.

    Any dense head with ``prior_generator``'s number of priors per position
    works, anchor-free heads included; ground truths may be horizontal,
    rotated or quadrilateral. Heads without DFL distributions keep ``cls``
    terms only.

    Args:
        terms (dict[str, dict]): term name (logged as is; must contain
            ``'loss'``) to ``dict(task='reg' | 'cls', region=...,
            T=..., weight_temperature=None, loss_weight=1.0)``;
            ``weight_temperature`` is :math:`t_w` of the teacher-softmax row
            weights, None weights every row 1. Defaults to LTD's four.
        reg_max (int): largest bin of the box distributions. Defaults to 16.
        avg_factor (float): divisor of each level's sum. Defaults to 16
            (the authors' code).
        cls_mode (str): divergence of the ``cls`` terms: ``'softmax'`` (the
            authors' code: KL of the softmax over the classes) or
            ``'sigmoid'`` (per-class binary KL, :class:`LogitKDLoss`'s
            sigmoid mode), the distributions a sigmoid head such as GFL's
            actually predicts; softmax is blind to the logits' common level
            and, at background priors, matches the differences between
            logits that all say "no object" [A]. Defaults to
            ``'softmax'``.
        **region_cfg: ``prior_generator``, ``topk``, ``vlr_assigner`` and
            ``score_ratio`` of the
            :class:`~mmrskd.models.task_modules.TASDRegionAssigner` (its
            defaults: GFL's ``8 * stride`` priors, ATSS top-9, LD's VLR,
            0.5).
    """

    TASKS = ('reg', 'cls')
    REGIONS = ('pos', 'vlr', 'gt_center', 'teacher_score')
    TERM_KEYS = ('task', 'region', 'T', 'weight_temperature', 'loss_weight')
    CLS_MODES = ('softmax', 'sigmoid')
    # the mapped arguments of precompute: the teacher's and the batch's
    precompute_args = ('cls_logits_T', 'batch_gt_instances',
                       'batch_img_metas')

    def __init__(self,
                 terms: Dict[str, dict] = LTD_TERMS,
                 reg_max: int = 16,
                 avg_factor: float = 16.0,
                 cls_mode: str = 'softmax',
                 **region_cfg):
        super().__init__()
        name = type(self).__name__
        if not terms:
            raise MMRSKDError(f'{name}: no terms; give at least one, e.g. '
                              "terms=dict(loss_kd=dict(task='cls', "
                              "region='pos', T=2))")
        check_positive(name, 'avg_factor', avg_factor)
        check_choice(name, 'cls_mode', cls_mode, self.CLS_MODES)
        self.terms = {term: self._check_term(term, dict(cfg))
                      for term, cfg in terms.items()}
        self.term_names = tuple(self.terms)
        self.reg_max = reg_max
        self.avg_factor = float(avg_factor)
        self.region_assigner = TASK_UTILS.build(
            dict(type='TASDRegionAssigner', **region_cfg))
        self.num_base_priors = self.region_assigner.num_base_priors
        self.divergences = nn.ModuleDict({
            term: MODELS.build(
                dict(type='LDLoss', T=cfg['T'], reg_max=reg_max,
                     class_reduction='mean') if cfg['task'] == 'reg' else
                dict(type='LogitKDLoss', mode=cls_mode, T=cfg['T'],
                     class_reduction='mean'))
            for term, cfg in self.terms.items()
        })

    def _check_term(self, term: str, cfg: dict) -> dict:
        where = f'{type(self).__name__}.terms.{term}'
        if 'loss' not in term:
            raise MMRSKDError(
                f'{where}: mmengine only backpropagates outputs whose name '
                f'contains "loss"; rename it, e.g. "loss_{term}"')
        unknown = sorted(set(cfg) - set(self.TERM_KEYS))
        if unknown or 'task' not in cfg or 'region' not in cfg:
            raise MMRSKDError(
                f'{where}: expected dict(task=..., region=..., T=..., '
                f'weight_temperature=None, loss_weight=1.0), got {cfg}')
        check_choice(where, 'task', cfg['task'], self.TASKS)
        check_choice(where, 'region', cfg['region'], self.REGIONS)
        if cfg['region'] == 'teacher_score' and cfg['task'] != 'cls':
            raise MMRSKDError(f"{where}: region='teacher_score' reads the "
                              "teacher's class logits; use it with "
                              "task='cls'")
        cfg.setdefault('T', 10.0 if cfg['task'] == 'reg' else 2.0)
        cfg.setdefault('weight_temperature', None)
        cfg.setdefault('loss_weight', 1.0)
        if cfg['weight_temperature'] is not None:
            check_positive(where, 'weight_temperature',
                           cfg['weight_temperature'])
        return cfg

    def forward(self,
                cls_logits_S: Sequence[Tensor],
                cls_logits_T: Sequence[Tensor],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Optional[Sequence[Dict]] = None,
                reg_logits_S: Optional[Sequence[Tensor]] = None,
                reg_logits_T: Optional[Sequence[Tensor]] = None,
                regions: Optional[Dict[str, List[Tensor]]] = None
                ) -> Dict[str, Tensor]:
        """Compute every term.

        Args:
            cls_logits_S (Sequence[Tensor]): student class logits per
                level, ``(N, A * C, H, W)``, ``A`` priors per position.
            cls_logits_T (Sequence[Tensor]): the teacher's, same shapes.
            batch_gt_instances (Sequence[InstanceData]): per image,
                ``bboxes`` (input pixels) and ``labels``.
            batch_img_metas (Sequence[dict], optional): image metas with
                ``pad_shape``; priors outside an image's padded area are
                left out of its regions. Without them every prior is valid.
            reg_logits_S (Sequence[Tensor], optional): student box
                distributions per level, ``(N, A * 4 * (reg_max + 1), H,
                W)``; needed by ``task='reg'`` terms.
            reg_logits_T (Sequence[Tensor], optional): the teacher's.
            regions (dict[str, list[Tensor]], optional): the terms'
                regions from :meth:`precompute` on the same batch; computed
                here when not given.

        Returns:
            dict[str, Tensor]: every term's scalar fp32 loss multiplied by
            its ``loss_weight``, by term name.
        """
        rows = self._task_rows(cls_logits_S, cls_logits_T, reg_logits_S,
                               reg_logits_T)
        if regions is None:
            regions = self.regions(cls_logits_T, batch_gt_instances,
                                   batch_img_metas)
        return {
            term: cfg['loss_weight'] * self._term(
                term, cfg, *rows[cfg['task']], regions[cfg['region']])
            for term, cfg in self.terms.items()
        }

    def kd_maps(self,
                cls_logits_S: Sequence[Tensor],
                cls_logits_T: Sequence[Tensor],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Optional[Sequence[Dict]] = None,
                reg_logits_S: Optional[Sequence[Tensor]] = None,
                reg_logits_T: Optional[Sequence[Tensor]] = None,
                regions: Optional[Dict[str, List[Tensor]]] = None
                ) -> Dict[str, List[Tensor]]:
        """The regions of the terms, for visualisation; takes the arguments
        of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: region name (e.g. ``'pos'``) to one
            ``(N, H_l, W_l)`` map per level, the share of each position's
            ``A`` priors that are in the region (0 or 1 with one prior).
        """
        self._task_rows(cls_logits_S, cls_logits_T, reg_logits_S,
                        reg_logits_T)  # the same checks as forward
        if regions is None:
            regions = self.regions(cls_logits_T, batch_gt_instances,
                                   batch_img_metas)
        sizes = [level.shape[-2:] for level in as_levels(
            type(self).__name__, 'cls_logits_T', cls_logits_T)]
        # mmdet's prior order is (h, w, prior) within a level
        return {
            region: [
                mask.reshape(len(mask), *size, -1).float().mean(-1)
                for mask, size in zip(masks, sizes)
            ]
            for region, masks in regions.items()
        }

    def precompute(self, cls_logits_T: Sequence[Tensor],
                   batch_gt_instances: Sequence[InstanceData],
                   batch_img_metas: Optional[Sequence[Dict]] = None
                   ) -> Dict[str, Dict[str, List[Tensor]]]:
        """What needs only the teacher and the batch: the regions, as
        ``dict(regions=...)`` for :meth:`forward`. The distiller calls this
        between the teacher's and the student's forward, so the
        assignment's temporaries never sit on top of the student's
        activations (they set LTD's peak memory)."""
        return dict(regions=self.regions(cls_logits_T, batch_gt_instances,
                                         batch_img_metas))

    def regions(self, cls_logits_T: Sequence[Tensor],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Optional[Sequence[Dict]] = None
                ) -> Dict[str, List[Tensor]]:
        """The masks ``(N, H_l * W_l * A)`` per level of every region the
        terms use, each assigned once, from the teacher's class logits
        ``(N, A * C, H_l, W_l)`` per level and the batch's GT."""
        name = type(self).__name__
        cls_logits_T = [level.detach().float() for level in as_levels(
            name, 'cls_logits_T', cls_logits_T)]
        cls_rows_T = [self._to_rows(level, 'cls') for level in cls_logits_T]
        num_imgs = cls_rows_T[0].shape[0]
        if len(batch_gt_instances) != num_imgs or (
                batch_img_metas is not None
                and len(batch_img_metas) != num_imgs):
            raise MMRSKDError(
                f'{name}: {len(batch_gt_instances)} batch_gt_instances for a '
                f'batch of {num_imgs} images; map the gt instances and metas '
                'of the same batch')
        return self.region_assigner(
            [cfg['region'] for cfg in self.terms.values()],
            [tuple(level.shape[-2:]) for level in cls_logits_T],
            batch_gt_instances, batch_img_metas, cls_rows_T,
            cls_rows_T[0].device, where=name)

    def _task_rows(self, cls_logits_S, cls_logits_T, reg_logits_S,
                   reg_logits_T) -> Dict[str, tuple]:
        """``(student rows, teacher rows)`` per task, each a list of
        ``(N, H_l * W_l * A, D)``."""
        name = type(self).__name__
        levels = dict(cls=pair_levels(name, cls_logits_S, cls_logits_T))
        if any(cfg['task'] == 'reg' for cfg in self.terms.values()):
            if reg_logits_S is None or reg_logits_T is None:
                raise MMRSKDError(
                    f"{name}: task='reg' terms need reg_logits_S and "
                    "reg_logits_T; map the box distributions, e.g. "
                    "'s_head[1]' and 't_head[1]'")
            levels['reg'] = pair_levels(name, reg_logits_S, reg_logits_T)
        sizes = [tuple(level.shape[-2:]) for level in levels['cls'][1]]
        if 'reg' in levels and sizes != [
                tuple(level.shape[-2:]) for level in levels['reg'][1]]:
            raise MMRSKDError(f'{name}: the class and box levels differ in '
                              'size; map the outputs of the same head')
        return {
            task: tuple([self._to_rows(level, task) for level in side]
                        for side in pair)
            for task, pair in levels.items()
        }

    def _term(self, term: str, cfg: dict, rows_S: List[Tensor],
              rows_T: List[Tensor], region: List[Tensor]) -> Tensor:
        """One term: the divergence of the region's rows of all levels."""
        # every level's sum is divided by the same avg_factor, so the sum
        # over levels is one divergence over the rows of all levels; only
        # the row weights are per level (a softmax over the level's rows)
        selected_S = torch.cat(
            [level[mask] for level, mask in zip(rows_S, region)])
        selected_T = torch.cat(
            [level[mask] for level, mask in zip(rows_T, region)])
        levels = None if cfg['weight_temperature'] is None else \
            torch.repeat_interleave(
                torch.arange(len(region), device=selected_T.device),
                torch.stack([mask.sum() for mask in region]))
        if cfg['task'] == 'reg':
            bins = self.reg_max + 1
            selected_S = selected_S.reshape(-1, bins)
            selected_T = selected_T.reshape(-1, bins)
            if levels is not None:
                levels = levels.repeat_interleave(4)
        return self.divergences[term](
            selected_S, selected_T,
            weight=row_weights(selected_T, cfg['task'],
                               cfg['weight_temperature'], levels,
                               len(region)),
            avg_factor=self.avg_factor)

    def _to_rows(self, logits: Tensor, task: str) -> Tensor:
        """``(N, A * D, H, W)`` to ``(N, H * W * A, D)``, mmdet's prior
        order."""
        name = type(self).__name__
        if logits.dim() != 4 or logits.shape[1] % self.num_base_priors:
            raise MMRSKDError(
                f'{name}: expected (N, A * D, H, W) head outputs with '
                f'A={self.num_base_priors} priors per position, got '
                f'{tuple(logits.shape)}; map the per-level head outputs')
        num_imgs, channels = logits.shape[:2]
        width = channels // self.num_base_priors
        if task == 'reg' and width != 4 * (self.reg_max + 1):
            raise MMRSKDError(
                f'{name}: {width} regression logits per prior do not match '
                f'reg_max={self.reg_max} (expected {4 * (self.reg_max + 1)});'
                " task='reg' needs a GFL-style distribution head")
        return logits.permute(0, 2, 3, 1).reshape(num_imgs, -1, width)


def row_weights(rows_T: Tensor,
                task: str,
                temperature: Optional[float],
                levels: Optional[Tensor] = None,
                num_levels: int = 1) -> Optional[Tensor]:
    """Teacher-softmax weights of the rows of each level, summing to the
    level's row count; None without a ``temperature``.

    Args:
        rows_T (Tensor): teacher rows ``(M, D)``.
        task (str): ``'reg'`` (rows summarised by their sum) or ``'cls'``
            (by their maximum).
        temperature (float, optional): :math:`t_w`.
        levels (Tensor, optional): level index of each row ``(M, )``;
            None: all rows are one level.
        num_levels (int): number of levels.
    """
    if temperature is None:
        return None
    summary = rows_T.sum(1) if task == 'reg' else rows_T.max(1)[0]
    summary = summary / temperature
    if levels is None:
        return F.softmax(summary, dim=0) * rows_T.shape[0]
    # softmax within each level: exp(u - max_l) / sum_l, times count_l
    level_max = summary.new_full((num_levels, ), -float('inf'))
    level_max = level_max.scatter_reduce(0, levels, summary, 'amax')
    exp = (summary - level_max[levels]).exp()
    level_sum = exp.new_zeros(num_levels).index_add(0, levels, exp)
    counts = torch.bincount(levels, minlength=num_levels).to(exp.dtype)
    return exp / level_sum[levels] * counts[levels]
