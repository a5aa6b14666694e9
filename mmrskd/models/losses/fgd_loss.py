from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ContextBlock
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor,
                                        check_level_channels, check_positive,
                                        pair_levels)
from mmrskd.models.utils import featmap_stride, rasterize_gt_boxes
from mmrskd.registry import MODELS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class FGDLoss(nn.Module):
    r"""Focal and global distillation (FGD).

    `Focal and Global Knowledge Distillation for Detectors
    <https://arxiv.org/abs/2111.11837>`_ (Yang et al., CVPR 2022). Per level,
    with features :math:`S, T` of shape ``(N, C, H, W)`` (the student already
    adapted to the teacher's channels by a connector):

    * masks from the GT boxes (horizontal, rotated or quadrilateral, see
      :func:`~mmrskd.models.utils.rasterize_gt_boxes`): foreground
      :math:`M^{fg}_{hw} = 1 / (\text{cells of the smallest box covering }
      hw)`, background :math:`M^{bg} = \mathbb{1}[M^{fg} = 0] / \#\{M^{fg}
      = 0\}` per image, so each object and the background carry comparable
      weight whatever their area;
    * attention with temperature :math:`t`: spatial :math:`A^S(F) = HW\,
      \mathrm{softmax}_{hw}(\mathrm{mean}_c |F| / t)`, channel :math:`A^C(F)
      = C\, \mathrm{softmax}_c(\mathrm{mean}_{hw} |F| / t)`;
    * focal loss :math:`\frac{1}{N} \sum M\, A^S(T) A^C(T) (S - T)^2` on the
      foreground (weight :math:`\alpha`) and background (:math:`\beta`);
    * attention loss :math:`\frac{\gamma}{N} (\|A^S(S) - A^S(T)\|_1 +
      \|A^C(S) - A^C(T)\|_1)`;
    * global loss :math:`\frac{\lambda}{N} \|\mathcal{G}_S(S) -
      \mathcal{G}_T(T)\|_2^2` with :math:`\mathcal{G}` a GcBlock (mmcv
      ``ContextBlock``: attention pooling, channel-add transform with ratio
      0.5) per side and level, trained by this loss only.

    Levels are summed. The defaults are FGD's RetinaNet/GFL settings.
    Everything runs in fp32, also under AMP autocast.

    Args:
        in_channels (int | Sequence[int]): teacher channels ``C``, one per
            level for multi-level inputs (e.g. ``[256] * 5`` for an FPN).
        temperature (float): attention temperature :math:`t`. Defaults to
            0.5.
        alpha_fg (float): foreground focal weight :math:`\alpha`. Defaults
            to 1e-3.
        beta_bg (float): background focal weight :math:`\beta`. Defaults to
            5e-4.
        gamma_attention (float): attention loss weight :math:`\gamma`.
            Defaults to 1e-3.
        lambda_global (float): global loss weight :math:`\lambda`. Defaults
            to 5e-6.
        min_one_cell (bool): boxes smaller than a cell still mark the cell
            holding their centre (see
            :func:`~mmrskd.models.utils.boxes_to_cell_masks`). Defaults to
            True.
        loss_weight (float): multiplier of the total. Defaults to 1.0.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 temperature: float = 0.5,
                 alpha_fg: float = 1e-3,
                 beta_bg: float = 5e-4,
                 gamma_attention: float = 1e-3,
                 lambda_global: float = 5e-6,
                 min_one_cell: bool = True,
                 loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'temperature', temperature)
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        self.in_channels = list(in_channels)
        if not self.in_channels or min(self.in_channels) < 2:
            raise MMRSKDError(
                f'{type(self).__name__}: in_channels={self.in_channels} needs '
                'at least 2 channels per level (the GcBlock bottleneck has '
                'half of them)')
        self.temperature = temperature
        self.alpha_fg = alpha_fg
        self.beta_bg = beta_bg
        self.gamma_attention = gamma_attention
        self.lambda_global = lambda_global
        self.min_one_cell = min_one_cell
        self.loss_weight = loss_weight
        self.student_context_blocks = nn.ModuleList(
            ContextBlock(channels, ratio=0.5) for channels in self.in_channels)
        self.teacher_context_blocks = nn.ModuleList(
            ContextBlock(channels, ratio=0.5) for channels in self.in_channels)

    def forward(self, preds_S: MultiLevelTensor, preds_T: MultiLevelTensor,
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Sequence[Dict]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student features
                ``(N, C, H, W)`` with the teacher's channels, one per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.
            batch_gt_instances (Sequence[InstanceData]): per image,
                ``bboxes`` in input pixels (xyxy tensor or mmdet/mmrotate box
                type).
            batch_img_metas (Sequence[dict]): image metas with
                ``batch_input_shape``, giving each level's stride.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        name = type(self).__name__
        levels_S, levels_T = pair_levels(name, preds_S, preds_T)
        check_level_channels(name, levels_T, self.in_channels,
                             'the teacher channels, one per level')
        if len(batch_gt_instances) != levels_T[0].shape[0]:
            raise MMRSKDError(
                f'{name}: {len(batch_gt_instances)} batch_gt_instances for a '
                f'batch of {levels_T[0].shape[0]} images; map the gt '
                'instances of the same batch')
        # autocast would run the context blocks in half precision
        with torch.autocast(levels_S[0].device.type, enabled=False):
            loss = levels_S[0].new_zeros(())
            for level, (pred_S, pred_T) in enumerate(zip(levels_S, levels_T)):
                loss = loss + self._level_loss(level, pred_S, pred_T,
                                               batch_gt_instances,
                                               batch_img_metas)
        return self.loss_weight * loss

    def _level_loss(self, level: int, pred_S: Tensor, pred_T: Tensor,
                    batch_gt_instances: Sequence[InstanceData],
                    batch_img_metas: Sequence[Dict]) -> Tensor:
        num_imgs = pred_S.shape[0]
        fg_mask, bg_mask = self._fg_bg_masks(pred_T, batch_gt_instances,
                                             batch_img_metas)
        spatial_T, channel_T = self._attention(pred_T)
        spatial_S, channel_S = self._attention(pred_S)

        attended_sq_error = spatial_T * channel_T * (pred_S - pred_T)**2
        fg_loss = (fg_mask * attended_sq_error).sum() / num_imgs
        bg_loss = (bg_mask * attended_sq_error).sum() / num_imgs
        attention_loss = (
            F.l1_loss(spatial_S, spatial_T, reduction='sum') +
            F.l1_loss(channel_S, channel_T, reduction='sum')) / num_imgs
        global_loss = F.mse_loss(
            self.student_context_blocks[level](pred_S),
            self.teacher_context_blocks[level](pred_T),
            reduction='sum') / num_imgs
        return (self.alpha_fg * fg_loss + self.beta_bg * bg_loss +
                self.gamma_attention * attention_loss +
                self.lambda_global * global_loss)

    def _fg_bg_masks(self, pred_T: Tensor,
                     batch_gt_instances: Sequence[InstanceData],
                     batch_img_metas: Sequence[Dict]) -> Tuple[Tensor, Tensor]:
        """Area-normalised foreground and background masks, ``(N, 1, H, W)``
        each."""
        featmap_size = tuple(pred_T.shape[2:])
        fg_mask = rasterize_gt_boxes(
            batch_gt_instances,
            featmap_size,
            featmap_stride(batch_img_metas, featmap_size),
            area_normalize=True,
            min_one_cell=self.min_one_cell).to(pred_T.device)
        bg_mask = (fg_mask == 0).float()
        bg_mask = bg_mask / bg_mask.sum((2, 3), keepdim=True).clamp_min(1)
        return fg_mask, bg_mask

    def _attention(self, feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Spatial ``(N, 1, H, W)`` and channel ``(N, C, 1, 1)`` attention,
        each summing to its number of positions/channels."""
        num_imgs, num_channels, height, width = feat.shape
        magnitude = feat.abs()
        spatial = height * width * F.softmax(
            magnitude.mean(1).reshape(num_imgs, -1) / self.temperature,
            dim=1)
        channel = num_channels * F.softmax(
            magnitude.mean((2, 3)) / self.temperature, dim=1)
        return (spatial.reshape(num_imgs, 1, height, width),
                channel.reshape(num_imgs, num_channels, 1, 1))
