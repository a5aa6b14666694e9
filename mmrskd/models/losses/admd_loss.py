from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_choice,
                                        check_positive, pair_levels,
                                        standardise_channels)
from mmrskd.models.utils import featmap_stride, rasterize_gt_boxes
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class ADMDLoss(nn.Module):
    r"""Adaptive discrepancy masked distillation (ADMD), the masked feature
    loss.

    `Adaptive Discrepancy Masked Distillation for remote sensing object
    detection <https://doi.org/10.1016/j.isprsjprs.2025.02.006>`_ (Li, Cheng,
    Han, ISPRS JPRS 2025). The teacher–student feature discrepancy marks
    where the student lags behind; those positions get a higher weight. Per
    level, with the adapted student :math:`S = \phi(S_{raw})` and the teacher
    :math:`T`, both ``(N, C, H, W)``:

    .. math::
        D_{nhw} = \frac{1}{C} \sum_c (T_{nchw} - S_{nchw})^2
        \quad (\text{detached}), \qquad
        M_n = HW\, \mathrm{softmax}_{hw}(\hat D_n / \tau),

    with :math:`\hat D_n = D_n / \overline{D_n}` (the image's mean
    discrepancy, ``discrepancy_norm='mean'``) so that :math:`\tau` is scale
    free, or :math:`\hat D_n = D_n` (``'none'``);

    optionally :math:`M \leftarrow M (1 + G)` with :math:`G` the GT-box
    foreground mask of the level (horizontal, rotated or quadrilateral boxes,
    :func:`~mmrskd.models.utils.rasterize_gt_boxes`), and

    .. math::
        \mathcal{L} = \sum_l \frac{1}{N H_l W_l} \sum_{n} \frac{1}{E_{ln}}
            \sum_{c,h,w} M_{nhw} (T_{nchw} - S_{nchw})^2 ,

    with :math:`E_{ln} = \frac{1}{C H_l W_l} \sum_{c,h,w} T_{nchw}^2` the
    teacher's mean energy on level :math:`l` of image :math:`n`
    (detached, ``level_norm='teacher'``; floored at 1% of the student's and
    at 1e-4, so that an all-zero teacher level gives a bounded loss), or
    :math:`E_{ln} = 1` (``'none'``).

    :math:`M` has mean 1 over the positions of an image, so the mask
    redistributes the plain feature loss instead of shrinking it. The
    adapter :math:`\phi` is a distiller connector (a 1x1 conv per level, as
    in the group's InsDist); pair this loss with
    :class:`~mmrskd.models.loss_schedules.ADMDAdaptiveWeight` (or
    :class:`~mmrskd.models.loss_schedules.ADMDMonotoneWeight`) to keep it
    from vanishing late in training. Only the abstract of the paper is
    public: the formulas above are this toolkit's reading of it (see
    ``configs/admd/README.md``).

    Args:
        temperature (float): :math:`\tau` of the spatial softmax; smaller
            values focus the mask on the largest discrepancies. Defaults to
            1.0.
        discrepancy_norm (str): ``'mean'`` divides each image's
            discrepancy by its mean before the softmax, so a position with
            ``k`` times the mean discrepancy gets ``exp((k - 1) / tau)``
            times the weight of an average one, whatever the features'
            scale. ``'none'`` uses the raw squared error: with features of
            a few units it saturates the softmax and the mask collapses
            onto a single position per image. Defaults to ``'mean'``.
        feature_norm (str): ``'channel'`` standardises every channel map of
            the student and the teacher (zero mean, unit variance over
            ``H, W`` per image, as PKD does) before the discrepancy and the
            loss, so the term no longer depends on the features' scale;
            ``'none'`` compares the raw features. Defaults to ``'none'``.
        level_norm (str): ``'teacher'`` divides each level's loss, per
            image, by the teacher's mean squared feature there, so that the
            term is a relative error and every FPN level counts alike.
            Without it the unnormalised extra levels dominate: on the
            synthetic-DOTA RetinaNet pair the teacher's mean squared feature
            grows from about 1 on P3 to about 1800 on P7, so the summed loss
            (and ``grad_balance``'s calibration of it) was P7's, 4 cells of
            an image. ``'none'`` sums the raw levels. Defaults to
            ``'teacher'``.
        fg_prior (bool): multiply the mask by ``1 + G`` so that objects get
            at least twice the weight of background of equal discrepancy;
            needs ``batch_gt_instances`` and ``batch_img_metas``. Defaults to
            False.
        min_one_cell (bool): with ``fg_prior``, boxes smaller than a cell
            still mark the cell holding their centre. Defaults to True.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    DISCREPANCY_NORMS = ('mean', 'none')
    FEATURE_NORMS = ('none', 'channel')
    LEVEL_NORMS = ('teacher', 'none')
    STUDENT_ENERGY_FLOOR = 1e-2
    MIN_ENERGY = 1e-4

    def __init__(self,
                 temperature: float = 1.0,
                 discrepancy_norm: str = 'mean',
                 feature_norm: str = 'none',
                 level_norm: str = 'teacher',
                 fg_prior: bool = False,
                 min_one_cell: bool = True,
                 loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'temperature', temperature)
        self.temperature = temperature
        name = type(self).__name__
        check_choice(name, 'discrepancy_norm', discrepancy_norm,
                     self.DISCREPANCY_NORMS)
        check_choice(name, 'feature_norm', feature_norm, self.FEATURE_NORMS)
        check_choice(name, 'level_norm', level_norm, self.LEVEL_NORMS)
        self.level_norm = level_norm
        self.discrepancy_norm = discrepancy_norm
        self.feature_norm = feature_norm
        self.fg_prior = fg_prior
        self.min_one_cell = min_one_cell
        self.loss_weight = loss_weight

    def forward(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                batch_gt_instances: Optional[Sequence[InstanceData]] = None,
                batch_img_metas: Optional[Sequence[Dict]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): adapted student features
                ``(N, C, H, W)``, one per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.
            batch_gt_instances (Sequence[InstanceData], optional): per image,
                ``bboxes`` in input pixels; used only with ``fg_prior``.
            batch_img_metas (Sequence[dict], optional): image metas with
                ``batch_input_shape``; used only with ``fg_prior``.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        levels_S, levels_T = self._levels(preds_S, preds_T,
                                          batch_gt_instances, batch_img_metas)
        loss = levels_S[0].new_zeros(())
        for pred_S, pred_T in zip(levels_S, levels_T):
            sq_error = (pred_S - pred_T)**2
            mask = self._level_mask(sq_error, pred_T, batch_gt_instances,
                                    batch_img_metas)
            num_imgs, _, height, width = sq_error.shape
            per_image = (mask * sq_error).flatten(1).sum(1)
            if self.level_norm == 'teacher':
                per_image = per_image / self._level_energy(pred_S, pred_T)
            loss = loss + per_image.sum() / (num_imgs * height * width)
        return self.loss_weight * loss

    @staticmethod
    @torch.no_grad()
    def _level_energy(pred_S: Tensor, pred_T: Tensor) -> Tensor:
        """:math:`E_{ln}` ``(N,)``: the teacher's mean squared feature per
        image, floored at ``STUDENT_ENERGY_FLOOR`` of the student's and at
        ``MIN_ENERGY``. The floors change nothing while the teacher's level
        holds any signal; on a near-zero teacher level they keep the
        relative error (and its gradient, which can be fp16 under AMP)
        bounded instead of dividing by zero."""
        energy_T = pred_T.flatten(1).pow(2).mean(1)
        energy_S = pred_S.flatten(1).pow(2).mean(1)
        return torch.maximum(energy_T, ADMDLoss.STUDENT_ENERGY_FLOOR *
                             energy_S).clamp(min=ADMDLoss.MIN_ENERGY)

    @torch.no_grad()
    def kd_maps(self,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                batch_gt_instances: Optional[Sequence[InstanceData]] = None,
                batch_img_metas: Optional[Sequence[Dict]] = None
                ) -> Dict[str, List[Tensor]]:
        """The weight :math:`M` of every level (foreground prior included),
        for visualisation; takes the arguments of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: ``'mask'``: one ``(N, H_l, W_l)`` map
            per level.
        """
        levels_S, levels_T = self._levels(preds_S, preds_T,
                                          batch_gt_instances, batch_img_metas)
        return dict(mask=[
            self._level_mask((pred_S - pred_T)**2, pred_T, batch_gt_instances,
                             batch_img_metas)[:, 0]
            for pred_S, pred_T in zip(levels_S, levels_T)
        ])

    def _levels(self, preds_S: MultiLevelTensor, preds_T: MultiLevelTensor,
                batch_gt_instances: Optional[Sequence[InstanceData]],
                batch_img_metas: Optional[Sequence[Dict]]
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Checked fp32 ``(N, C, H, W)`` student and teacher levels."""
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        if any(pred.dim() != 4 for pred in levels_S):
            raise MMRSKDError(
                f'{name}: expected (N, C, H, W) features, got '
                f'{[tuple(p.shape) for p in levels_S]}; map feature maps '
                '(e.g. the neck outputs) in loss_mappings')
        if self.fg_prior and (batch_gt_instances is None
                              or batch_img_metas is None):
            raise MMRSKDError(
                f"{name}: fg_prior=True needs batch_gt_instances="
                "'gt_instances' and batch_img_metas='img_metas' in "
                'loss_mappings (or set fg_prior=False)')
        if self.feature_norm == 'channel':
            levels_S, levels_T = (
                [standardise_channels(pred) for pred in levels]
                for levels in (levels_S, levels_T))
        return levels_S, levels_T

    def _level_mask(self, sq_error: Tensor, pred_T: Tensor,
                    batch_gt_instances: Optional[Sequence[InstanceData]],
                    batch_img_metas: Optional[Sequence[Dict]]) -> Tensor:
        """:math:`M` ``(N, 1, H, W)`` of one level from its ``(N, C, H, W)``
        squared error, times ``1 + G`` with ``fg_prior``."""
        mask = self.discrepancy_mask(sq_error.detach())
        if self.fg_prior:
            mask = mask * (1 + self._fg_mask(pred_T, batch_gt_instances,
                                             batch_img_metas))
        return mask

    def discrepancy_mask(self, sq_error: Tensor) -> Tensor:
        """``H*W * softmax_hw(D / tau)`` per image, ``D = mean_c sq_error``
        (divided by its mean over the image with ``discrepancy_norm='mean'``).

        Args:
            sq_error (Tensor): ``(N, C, H, W)`` squared teacher-student
                differences (detached).

        Returns:
            Tensor: ``(N, 1, H, W)``, mean 1 over each image's positions.
        """
        num_imgs, _, height, width = sq_error.shape
        discrepancy = sq_error.mean(1).reshape(num_imgs, -1)
        if self.discrepancy_norm == 'mean':
            # clamp: a student equal to its teacher gives a uniform mask
            discrepancy = discrepancy / discrepancy.mean(
                1, keepdim=True).clamp(min=torch.finfo(
                    discrepancy.dtype).tiny)
        mask = height * width * F.softmax(discrepancy / self.temperature,
                                          dim=1)
        return mask.reshape(num_imgs, 1, height, width)

    def _fg_mask(self, pred_T: Tensor,
                 batch_gt_instances: Sequence[InstanceData],
                 batch_img_metas: Sequence[Dict]) -> Tensor:
        name = type(self).__name__
        if len(batch_gt_instances) != pred_T.shape[0]:
            raise MMRSKDError(
                f'{name}: {len(batch_gt_instances)} batch_gt_instances for a '
                f'batch of {pred_T.shape[0]} images; map the gt instances of '
                'the same batch')
        featmap_size = tuple(pred_T.shape[2:])
        return rasterize_gt_boxes(
            batch_gt_instances,
            featmap_size,
            featmap_stride(batch_img_metas, featmap_size),
            min_one_cell=self.min_one_cell).to(pred_T.device)
