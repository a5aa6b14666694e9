"""DKED direction-adaptive feature response distillation (Huang, Li & Tao,
ICASSP 2022)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor

from mmrskd.models.losses.utils import (as_levels, check_choice,
                                        pair_levels, standardise_channels)
from mmrskd.models.utils import featmap_stride
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError

TEACHER_DDC_MODES = ('frozen', 'trainable')
FEATURE_NORMS = ('none', 'channel')


@MODELS.register_module()
class DKEDFeatureResponseLoss(nn.Module):
    r"""Distil FPN responses seen through dynamic directional convolutions,
    on the oriented-Gaussian heat map of the objects (DKED).

    Per FPN level ``l``, with teacher features :math:`Y_T` ``(N, C_l, H,
    W)`` and student features :math:`Y_S` ``(N, C^S_l, H, W)``:

    .. math::
        Y'_T = \mathrm{DDC}_T(Y_T), \quad
        Y'_S = \mathrm{DDC}_S(\varphi(Y_S)), \quad
        \mathcal{L} = \sum_l \frac{\|G_l \odot (Y'_T - Y'_S)\|_2^2}
            {\max(\sum G_l, 1)},

    summed over the batch, channels and positions. :math:`\varphi` is a
    1x1 conv + BN adapter (``ConvBNConnector``) to the teacher's width (the
    identity when the widths already match; since it is part of the loss,
    the two feature arguments may differ in width and are not a same-shape
    ``_S``/``_T`` pair for the distiller), the DDCs are
    :class:`~mmrskd.models.layers.DynamicDirectionalConv2d` ``C_l -> C_l``
    layers, one per level and side. All of them live in this loss, i.e. in
    the training branch only: the released student has none of them.

    ``G_l`` ``(N, 1, H, W)`` is GGHL's oriented-Gaussian heat map of the GT
    on level ``l``, the largest soft class target of each cell [A]:

    * mapped ``batch_targets``: the per-level targets of
      ``GGHLHead.get_targets`` (tap ``dict(model='student',
      method='bbox_head.get_targets')``), i.e. exactly the student's own
      label assignment, nothing recomputed;
    * otherwise rendered from ``batch_gt_instances`` by ``assigner`` (a
      class-agnostic :class:`~mmrskd.models.task_modules.GGHLAssigner`;
      give one ``window_radius_max`` per FPN level) at ``strides`` (None:
      the padded input size over the feature size), for detectors without a
      GGHL head.

    Teacher DDC [A]: ``'frozen'`` keeps it at its random initialisation, a
    fixed directional response of the teacher that the student's adapter
    and DDC learn to reproduce; ``'trainable'`` trains it through this loss
    only, the reading in which DDC "extracts" the teacher's knowledge, but
    nothing then stops both DDCs from shrinking towards zero responses and a
    trivially small loss. The attention temperature of every DDC is
    annealed by ``DDCTemperatureHook``.

    Args:
        in_channels (int | Sequence[int]): teacher channels ``C_l`` per
            level.
        student_channels (int | Sequence[int], optional): student channels
            ``C^S_l``; None: the student already has ``C_l`` channels and
            :math:`\varphi` is the identity. Defaults to None.
        ddc_cfg (dict): config of each DDC; ``in_channels`` and
            ``out_channels`` are filled in. Defaults to a 3x3 ``DDC`` with
            one base kernel turned to 0/90/180/270 degrees (the
            prototype's rotated family) [A]. The loss runs the DDCs only
            where :math:`G_l > 0` (``DDC.forward_at``).
        teacher_ddc (str): ``'frozen'`` or ``'trainable'``, see above.
            Defaults to ``'frozen'``.
        feature_norm (str): ``'channel'`` standardises every channel map of
            :math:`Y_T` and :math:`\varphi(Y_S)` (zero mean, unit variance
            over ``H, W`` per image, as PKD does) before the DDCs, so the
            target no longer depends on the scale of each teacher channel;
            ``'none'`` feeds the raw features, as the paper writes it [A].
            Defaults to ``'none'``.
        assigner (dict): :class:`GGHLAssigner` config used without
            ``batch_targets``; ``num_classes`` is set to 1.
        strides (Sequence[float], optional): stride of each level for the
            assigner; None infers them from ``batch_input_shape``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 student_channels: Union[None, int, Sequence[int]] = None,
                 ddc_cfg: Dict = dict(
                     type='DDC',
                     kernel_size=3,
                     padding=1,
                     num_base_kernels=1,
                     angles=(0, 90, 180, 270)),
                 teacher_ddc: str = 'frozen',
                 feature_norm: str = 'none',
                 assigner: Dict = dict(type='GGHLAssigner'),
                 strides: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        check_choice(name, 'teacher_ddc', teacher_ddc, TEACHER_DDC_MODES)
        check_choice(name, 'feature_norm', feature_norm, FEATURE_NORMS)
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        if student_channels is None or isinstance(student_channels, int):
            student_channels = [student_channels] * len(in_channels)
        if len(student_channels) != len(in_channels):
            raise MMRSKDError(
                f'{name}: student_channels has {len(student_channels)} '
                f'levels but in_channels has {len(in_channels)}; give one '
                'entry per FPN level')
        if strides is not None and len(strides) != len(in_channels):
            raise MMRSKDError(
                f'{name}: strides has {len(strides)} levels but in_channels '
                f'has {len(in_channels)}; give one stride per FPN level')
        self.in_channels = list(in_channels)
        self.student_channels = [
            c if c is not None else c_t
            for c, c_t in zip(student_channels, self.in_channels)
        ]
        self.teacher_ddc = teacher_ddc
        self.feature_norm = feature_norm
        self.strides = None if strides is None else list(strides)
        self.loss_weight = loss_weight
        self.adapters = nn.ModuleList(
            nn.Identity() if c_s == c_t else MODELS.build(
                dict(type='ConvBNConnector', in_channels=c_s,
                     out_channels=c_t))
            for c_s, c_t in zip(self.student_channels, self.in_channels))
        self.student_ddcs = nn.ModuleList(
            self._build_ddc(ddc_cfg, c) for c in self.in_channels)
        self.teacher_ddcs = nn.ModuleList(
            self._build_ddc(ddc_cfg, c) for c in self.in_channels)
        if teacher_ddc == 'frozen':
            self.teacher_ddcs.requires_grad_(False)
        self.assigner = TASK_UTILS.build(
            assigner, default_args=dict(num_classes=1))

    @staticmethod
    def _build_ddc(ddc_cfg: Dict, channels: int) -> nn.Module:
        cfg = copy.deepcopy(dict(ddc_cfg))
        cfg.update(in_channels=channels, out_channels=channels)
        return MODELS.build(cfg)

    def forward(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                batch_targets: Optional[List[Dict[str, Tensor]]] = None,
                batch_gt_instances: Optional[Sequence[InstanceData]] = None,
                batch_img_metas: Optional[Sequence[Dict]] = None) -> Tensor:
        """Compute the loss.

        Args:
            student_feats (Sequence[Tensor]): student FPN levels
                ``(N, C^S_l, H_l, W_l)``.
            teacher_feats (Sequence[Tensor]): teacher FPN levels
                ``(N, C_l, H_l, W_l)``.
            batch_targets (list[dict], optional): ``GGHLHead.get_targets``
                output, per level ``heatmap`` ``(N, H_l * W_l, classes)``.
            batch_gt_instances (Sequence[InstanceData], optional): GT
                ``bboxes`` (any box type) per image, without
                ``batch_targets``.
            batch_img_metas (Sequence[dict], optional): image metas with
                ``batch_input_shape``, when ``strides`` is None.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        levels_S, levels_T = self._levels(student_feats, teacher_feats)
        heatmaps = self._heatmaps(levels_T, batch_targets,
                                  batch_gt_instances, batch_img_metas)
        # autocast would run the DDCs in half precision
        with torch.autocast(levels_S[0].device.type, enabled=False):
            loss = levels_S[0].new_zeros(())
            for level, (feat_S, feat_T, heatmap) in enumerate(
                    zip(levels_S, levels_T, heatmaps)):
                # G is 0 on most cells: the DDCs run only where it is not
                flat_heatmap = heatmap.flatten()
                positions = flat_heatmap.nonzero().squeeze(1)
                response_T, response_S = self._responses(
                    level, feat_S, feat_T, positions)
                weighted = flat_heatmap[positions, None] * (
                    response_T - response_S)
                loss = loss + weighted.pow(2).sum() / heatmap.sum().clamp(
                    min=1)
        return self.loss_weight * loss

    @torch.no_grad()
    def kd_maps(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                batch_targets: Optional[List[Dict[str, Tensor]]] = None,
                batch_gt_instances: Optional[Sequence[InstanceData]] = None,
                batch_img_metas: Optional[Sequence[Dict]] = None
                ) -> Dict[str, List[Tensor]]:
        """The heat map and the DDC responses of every level, for
        visualisation; takes the arguments of :meth:`forward`.

        Returns:
            dict[str, list[Tensor]]: one ``(N, H_l, W_l)`` map per level for
            ``'gaussian'`` (:math:`G_l`, in [0, 1]), ``'response_T'`` and
            ``'response_S'`` (the channel mean of :math:`|Y'_T|` and
            :math:`|Y'_S|`).
        """
        levels_S, levels_T = self._levels(student_feats, teacher_feats)
        heatmaps = self._heatmaps(levels_T, batch_targets,
                                  batch_gt_instances, batch_img_metas)
        maps = dict(gaussian=[heatmap[:, 0] for heatmap in heatmaps],
                    response_T=[], response_S=[])
        with torch.autocast(levels_S[0].device.type, enabled=False):
            for level, (feat_S, feat_T) in enumerate(zip(levels_S,
                                                         levels_T)):
                response_T, response_S = self._responses(
                    level, feat_S, feat_T)
                maps['response_T'].append(response_T.abs().mean(1))
                maps['response_S'].append(response_S.abs().mean(1))
        return maps

    def _levels(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Checked fp32 student ``(N, C^S_l, H_l, W_l)`` and teacher
        ``(N, C_l, H_l, W_l)`` levels."""
        name = type(self).__name__
        levels_S, levels_T = pair_levels(
            name, as_levels(name, 'student_feats', student_feats),
            as_levels(name, 'teacher_feats', teacher_feats),
            same_shape=False)
        self._check_shapes(levels_S, levels_T)
        return levels_S, levels_T

    def _responses(self, level: int, feat_S: Tensor, feat_T: Tensor,
                   positions: Optional[Tensor] = None
                   ) -> Tuple[Tensor, Tensor]:
        """:math:`Y'_T` and :math:`Y'_S` of one level, both ``(N, C_l, H_l,
        W_l)``, or ``(M, C_l)`` at the flat ``(N, H_l, W_l)`` indices
        ``positions`` ``(M, )``, of the features standardised by
        ``feature_norm``; the teacher DDC gets gradients only when
        trainable."""
        def respond(ddc, feat):
            if self.feature_norm == 'channel':
                feat = standardise_channels(feat)
            return ddc(feat) if positions is None else ddc.forward_at(
                feat, positions)

        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and self.teacher_ddc == 'trainable'):
            response_T = respond(self.teacher_ddcs[level], feat_T)
        response_S = respond(self.student_ddcs[level],
                             self.adapters[level](feat_S))
        return response_T, response_S

    def _check_shapes(self, levels_S: List[Tensor],
                      levels_T: List[Tensor]) -> None:
        name = type(self).__name__
        if len(levels_T) != len(self.in_channels):
            raise MMRSKDError(
                f'{name}: got {len(levels_T)} levels but in_channels has '
                f'{len(self.in_channels)}; map the FPN levels the loss was '
                'built for')
        for level, (feat_S, feat_T) in enumerate(zip(levels_S, levels_T)):
            c_s, c_t = self.student_channels[level], self.in_channels[level]
            if (feat_S.dim() != 4 or feat_T.dim() != 4
                    or feat_S.shape[1] != c_s or feat_T.shape[1] != c_t
                    or feat_S.shape[0] != feat_T.shape[0]
                    or feat_S.shape[2:] != feat_T.shape[2:]):
                raise MMRSKDError(
                    f'{name}: level {level} student {tuple(feat_S.shape)} / '
                    f'teacher {tuple(feat_T.shape)} do not match '
                    f'student_channels={c_s}, in_channels={c_t} with equal '
                    'N, H, W; fix the channels or map levels of equal stride')

    def _heatmaps(self, levels_T: List[Tensor],
                  batch_targets: Optional[List[Dict[str, Tensor]]],
                  batch_gt_instances: Optional[Sequence[InstanceData]],
                  batch_img_metas: Optional[Sequence[Dict]]
                  ) -> List[Tensor]:
        """``G_l`` ``(N, 1, H_l, W_l)`` per level, fp32 and constant."""
        name = type(self).__name__
        sizes = [tuple(feat.shape[2:]) for feat in levels_T]
        num_imgs = levels_T[0].shape[0]
        if batch_targets is not None:
            if len(batch_targets) != len(sizes) or any(
                    'heatmap' not in targets for targets in batch_targets):
                raise MMRSKDError(
                    f'{name}: batch_targets must be the per-level list of '
                    'GGHLHead.get_targets with a "heatmap" each, one per '
                    f'FPN level ({len(sizes)}); tap dict(model="student", '
                    'method="bbox_head.get_targets")')
            heatmaps = [targets['heatmap'] for targets in batch_targets]
        elif batch_gt_instances is not None:
            heatmaps = self._render(sizes, num_imgs, batch_gt_instances,
                                    batch_img_metas, levels_T[0].device)
        else:
            raise MMRSKDError(
                f'{name}: map batch_targets (the student GGHL head\'s '
                'get_targets) or batch_gt_instances="gt_instances" in '
                'loss_mappings to give the Gaussian heat map G')
        maps = []
        for level, (heatmap, (height, width)) in enumerate(zip(
                heatmaps, sizes)):
            if heatmap.shape[:2] != (num_imgs, height * width):
                raise MMRSKDError(
                    f'{name}: level {level} heat map has shape '
                    f'{tuple(heatmap.shape)} for features of {num_imgs} '
                    f'images at {height}x{width}; the targets must come from '
                    'the same batch and levels')
            maps.append(heatmap.detach().float().amax(dim=-1).view(
                num_imgs, 1, height, width))
        return maps

    def _render(self, sizes, num_imgs, batch_gt_instances, batch_img_metas,
                device) -> List[Tensor]:
        """Class-agnostic GGHL heat maps ``(N, H_l * W_l, 1)`` of the GT."""
        name = type(self).__name__
        if len(batch_gt_instances) != num_imgs:
            raise MMRSKDError(
                f'{name}: {len(batch_gt_instances)} batch_gt_instances for a '
                f'batch of {num_imgs} images; map the gt instances of the '
                'same batch')
        if self.strides is not None:
            strides = self.strides
        else:
            if batch_img_metas is None:
                raise MMRSKDError(
                    f'{name}: set strides or map batch_img_metas='
                    '"img_metas" so the heat map can be rendered')
            strides = [featmap_stride(batch_img_metas, size)[0]
                       for size in sizes]
        per_image = []
        for gt in batch_gt_instances:
            if 'bboxes' not in gt:
                raise MMRSKDError(
                    f'{name}: batch_gt_instances has no bboxes; map '
                    'batch_gt_instances="gt_instances"')
            agnostic = InstanceData(
                bboxes=gt.bboxes,
                labels=torch.zeros(len(gt), dtype=torch.long))
            per_image.append(
                self.assigner.assign(agnostic.to(device), sizes, strides))
        return [
            torch.stack([levels[level].heatmap for levels in per_image])
            for level in range(len(sizes))
        ]
