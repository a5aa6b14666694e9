import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.utils import multi_apply
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig)
from mmengine.config import ConfigDict
from mmengine.dist import get_world_size
from torch import Tensor

from mmrskd.models.backbones.yolov8_csp_darknet import (
    TORCH_DEFAULT_CONV_INIT, make_divisible)
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError

_NO_ASSIGNER = (
    "YOLOv8Head: training needs model.train_cfg=dict(assigner=dict(type="
    "'BatchTaskAlignedAssigner', topk=10, alpha=0.5, beta=6.0)) in the "
    'detector config')


@MODELS.register_module()
class YOLOv8Head(BaseDenseHead):
    """Decoupled anchor-free head of YOLOv8 with DFL box bins.

    Per level, a classification branch (3x3, 3x3 ConvModules, 1x1 conv to
    ``num_classes``) and a regression branch (the same, to ``4 * reg_max``
    logits) run on the neck map. Each side distance (left, top, right,
    bottom, in strides) is the expectation of a softmax over ``reg_max``
    bins ``0 .. reg_max - 1``, measured from the cell centre
    (``MlvlPointGenerator(offset=0.5)``, ``DistancePointBBoxCoder``).

    Training assigns points with :class:`BatchTaskAlignedAssigner` and
    computes, normalised by the sum of the soft class targets:
    sigmoid BCE on the soft targets, CIoU on positive boxes and DFL on the
    positive bins, both weighted by the soft target of the point. As in
    YOLOv8 (ultralytics and mmyolo), the losses are multiplied by the global
    batch size, so the gradient sums over images; the SGD lr of 0.01 is
    tuned for that.

    Prediction goes through mmdet's :meth:`BaseDenseHead.predict_by_feat`
    (multi-label score filtering, class-wise NMS), so outputs are the
    standard ``InstanceData(bboxes, scores, labels)``.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Unscaled input widths per level, e.g.
            [256, 512, 1024]; multiplied by ``widen_factor``.
        widen_factor (float): Width multiplier. Defaults to 1.0.
        reg_max (int): DFL bins per side. Defaults to 16.
        prior_generator (dict): Point generator; its strides must match the
            input maps.
        bbox_coder (dict): Distance <-> box coder.
        loss_cls (dict): Sigmoid classification loss that takes soft
            targets. Defaults to BCE, weight 0.5.
        loss_bbox (dict): Box loss. Defaults to CIoU, weight 7.5.
        loss_dfl (dict): Distribution focal loss. Defaults to weight 1.5/4
            (YOLOv8's 1.5 for the mean over the four sides).
        norm_cfg (dict): Defaults to BN(momentum=0.03, eps=0.001).
        act_cfg (dict): Defaults to SiLU.
        train_cfg (dict, optional): Holds ``assigner``.
        test_cfg (dict, optional): ``nms_pre``, ``score_thr``, ``nms``,
            ``max_per_img`` as for any mmdet dense head.
        init_cfg (dict, optional): Defaults to PyTorch's conv init.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int] = (256, 512, 1024),
                 widen_factor: float = 1.0,
                 reg_max: int = 16,
                 prior_generator: ConfigType = dict(
                     type='mmdet.MlvlPointGenerator',
                     offset=0.5,
                     strides=[8, 16, 32]),
                 bbox_coder: ConfigType = dict(
                     type='mmdet.DistancePointBBoxCoder'),
                 loss_cls: ConfigType = dict(
                     type='mmdet.CrossEntropyLoss',
                     use_sigmoid=True,
                     reduction='mean',
                     loss_weight=0.5),
                 loss_bbox: ConfigType = dict(
                     type='mmdet.CIoULoss', reduction='mean',
                     loss_weight=7.5),
                 loss_dfl: ConfigType = dict(
                     type='mmdet.DistributionFocalLoss',
                     reduction='mean',
                     loss_weight=1.5 / 4),
                 norm_cfg: ConfigType = dict(
                     type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = TORCH_DEFAULT_CONV_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.cls_out_channels = num_classes
        self.in_channels = [make_divisible(c, widen_factor)
                            for c in in_channels]
        self.reg_max = reg_max
        # attribute access (cfg.nms) also for configs given as plain dicts
        self.train_cfg = ConfigDict(train_cfg) if train_cfg else None
        self.test_cfg = ConfigDict(test_cfg) if test_cfg else None

        self.prior_generator = TASK_UTILS.build(prior_generator)
        if self.prior_generator.num_levels != len(self.in_channels):
            raise MMRSKDError(
                f'YOLOv8Head: prior_generator has '
                f'{self.prior_generator.num_levels} strides but in_channels '
                f'lists {len(self.in_channels)} levels')
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_dfl = MODELS.build(loss_dfl)
        self.use_sigmoid_cls = getattr(self.loss_cls, 'use_sigmoid', False)
        if not self.use_sigmoid_cls:
            raise MMRSKDError(
                'YOLOv8Head: loss_cls must be a sigmoid loss on soft targets, '
                "e.g. dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True)")
        if self.train_cfg is not None:
            if 'assigner' not in self.train_cfg:
                raise MMRSKDError(_NO_ASSIGNER)
            self.assigner = TASK_UTILS.build(
                self.train_cfg.assigner,
                default_args=dict(num_classes=num_classes))

        reg_channels = max(16, self.in_channels[0] // 4, 4 * reg_max)
        cls_channels = max(self.in_channels[0], num_classes)
        cfgs = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        for channels in self.in_channels:
            self.cls_preds.append(
                nn.Sequential(
                    ConvModule(channels, cls_channels, 3, padding=1, **cfgs),
                    ConvModule(
                        cls_channels, cls_channels, 3, padding=1, **cfgs),
                    nn.Conv2d(cls_channels, num_classes, 1)))
            self.reg_preds.append(
                nn.Sequential(
                    ConvModule(channels, reg_channels, 3, padding=1, **cfgs),
                    ConvModule(
                        reg_channels, reg_channels, 3, padding=1, **cfgs),
                    nn.Conv2d(reg_channels, 4 * reg_max, 1)))
        self.register_buffer(
            'proj', torch.arange(reg_max, dtype=torch.float),
            persistent=False)

    def init_weights(self) -> None:
        """Conv init, then YOLOv8's bias priors: box logits 1.0 (uniform
        bins), class logits for ~5 objects per class in a 640x640 image."""
        super().init_weights()
        for cls_pred, reg_pred, (stride, _) in zip(
                self.cls_preds, self.reg_preds, self.prior_generator.strides):
            nn.init.constant_(reg_pred[-1].bias, 1.0)
            nn.init.constant_(cls_pred[-1].bias,
                              math.log(5 / self.num_classes /
                                       (640 / stride)**2))

    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], ...]:
        """
        Args:
            x (tuple[Tensor]): Neck maps, level i of shape
                [B, in_channels[i], H_i, W_i].

        Returns:
            tuple[list[Tensor]]: Per level,

            - cls_scores: [B, num_classes, H_i, W_i] logits.
            - bbox_preds: [B, 4, H_i, W_i] distances (l, t, r, b) in pixels.
            - bbox_dist_preds: [B, 4 * reg_max, H_i, W_i] bin logits,
              side-major (side * reg_max + bin).
        """
        if len(x) != len(self.in_channels):
            raise MMRSKDError(
                f'YOLOv8Head: got {len(x)} feature maps but was built for '
                f'{len(self.in_channels)}; check the neck out_channels')
        return multi_apply(self.forward_single, x, self.cls_preds,
                           self.reg_preds, self.prior_generator.strides)

    def forward_single(self, x: Tensor, cls_pred: nn.Module,
                       reg_pred: nn.Module,
                       stride: Tuple[float, float]) -> Tuple[Tensor, ...]:
        """One level of :meth:`forward`."""
        cls_score = cls_pred(x)
        bbox_dist_pred = reg_pred(x)
        batch, _, height, width = bbox_dist_pred.shape
        bins = bbox_dist_pred.view(batch, 4, self.reg_max, height,
                                   width).softmax(2)
        distance = torch.einsum('bsrhw,r->bshw', bins, self.proj)
        scale = distance.new_tensor(stride).repeat(2).view(1, 4, 1, 1)
        return cls_score, distance * scale, bbox_dist_pred

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        bbox_dist_preds: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """mmdet's dense-head post-processing; the bin logits
        ``bbox_dist_preds`` only serve the loss and are ignored here."""
        return super().predict_by_feat(
            cls_scores,
            bbox_preds,
            batch_img_metas=batch_img_metas,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms)

    @staticmethod
    def _pad_gt(batch_gt_instances: InstanceList, device: torch.device,
                dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
        """Stack ground truth into [B, M, 4] boxes, [B, M] labels and a
        [B, M] validity mask, M being the largest count in the batch."""
        num_imgs = len(batch_gt_instances)
        max_gts = max(len(gt) for gt in batch_gt_instances)
        bboxes = torch.zeros((num_imgs, max_gts, 4), device=device,
                             dtype=dtype)
        labels = torch.zeros((num_imgs, max_gts), device=device,
                             dtype=torch.long)
        valid = torch.zeros((num_imgs, max_gts), device=device,
                            dtype=torch.bool)
        for index, gt in enumerate(batch_gt_instances):
            count = len(gt)
            bboxes[index, :count] = get_box_tensor(gt.bboxes).to(dtype)
            labels[index, :count] = gt.labels
            valid[index, :count] = True
        return bboxes, labels, valid

    def loss_by_feat(
            self,
            cls_scores: List[Tensor],
            bbox_preds: List[Tensor],
            bbox_dist_preds: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None) -> dict:
        """Losses of a batch.

        Args:
            cls_scores, bbox_preds, bbox_dist_preds (list[Tensor]): Outputs
                of :meth:`forward`.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (x1y1x2y2,
                tensor or HorizontalBoxes) and ``labels`` per image.
            batch_img_metas (list[dict]): Image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): Not
                used; YOLOv8 has no ignore regions.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_dfl``.
        """
        if not hasattr(self, 'assigner'):
            raise MMRSKDError(_NO_ASSIGNER)
        num_imgs = len(batch_img_metas)
        dtype, device = cls_scores[0].dtype, cls_scores[0].device
        priors = torch.cat(
            self.prior_generator.grid_priors(
                [score.shape[-2:] for score in cls_scores],
                dtype=dtype,
                device=device,
                with_stride=True))
        points, strides = priors[:, :2], priors[:, 2:].repeat(1, 2)

        def flatten(maps: List[Tensor]) -> Tensor:
            # [B, C, H, W] per level -> [B, sum(H * W), C]
            return torch.cat(
                [m.flatten(2).transpose(1, 2) for m in maps], dim=1)

        flat_cls_scores = flatten(cls_scores)
        flat_distances = flatten(bbox_preds)
        flat_dist_logits = flatten(bbox_dist_preds)
        pred_bboxes = self.bbox_coder.decode(
            points.expand(num_imgs, -1, -1), flat_distances)

        gt_bboxes, gt_labels, gt_valid = self._pad_gt(batch_gt_instances,
                                                      device, dtype)
        assigned = self.assigner.assign(pred_bboxes.detach(),
                                        flat_cls_scores.detach().sigmoid(),
                                        points, gt_labels, gt_bboxes,
                                        gt_valid)
        targets = assigned['scores']
        fg_mask = assigned['fg_mask']
        avg_factor = targets.sum().clamp(min=1)

        loss_cls = self.loss_cls(
            flat_cls_scores.reshape(-1, self.num_classes),
            targets.reshape(-1, self.num_classes),
            avg_factor=avg_factor)
        if fg_mask.any():
            weight = targets.sum(-1)[fg_mask]
            pos_bboxes = assigned['bboxes'][fg_mask]
            loss_bbox = self.loss_bbox(
                pred_bboxes[fg_mask],
                pos_bboxes,
                weight=weight,
                avg_factor=avg_factor)
            # DFL targets are side distances in strides, below the last bin
            pos_strides = strides.expand(num_imgs, -1, -1)[fg_mask]
            pos_points = points.expand(num_imgs, -1, -1)[fg_mask]
            dist_targets = self.bbox_coder.encode(
                pos_points / pos_strides[:, :2],
                pos_bboxes / pos_strides,
                max_dis=self.reg_max - 1,
                eps=0.01)
            loss_dfl = self.loss_dfl(
                flat_dist_logits[fg_mask].reshape(-1, self.reg_max),
                dist_targets.reshape(-1),
                weight=weight[:, None].expand(-1, 4).reshape(-1),
                avg_factor=avg_factor)
        else:
            # keep the graph connected so DDP sees every parameter used
            loss_bbox = flat_distances.sum() * 0
            loss_dfl = flat_dist_logits.sum() * 0

        batch_scale = num_imgs * get_world_size()
        return dict(
            loss_cls=loss_cls * batch_scale,
            loss_bbox=loss_bbox * batch_scale,
            loss_dfl=loss_dfl * batch_scale)
