"""The anchor-free oriented head of GGHL (Huang et al., TIP 2022)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import multi_apply
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig)
from mmengine.config import ConfigDict
from mmengine.model import bias_init_with_prob, normal_init
from mmrotate.models.task_modules.coders import GVFixCoder
from torch import Tensor

from mmrskd.models.dense_heads.gghl_decoding import (LOC_SPLIT,
                                                     NUM_LOC_CHANNELS,
                                                     decode_image,
                                                     decode_level,
                                                     flatten_level)
from mmrskd.models.dense_heads.gghl_targets import gghl_targets
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError


@MODELS.register_module()
class GGHLHead(BaseDenseHead):
    """GGHL head: per level, decoupled localisation and classification
    branches on top of each FPN level (no weight sharing across levels).

    Each branch is ``stacked_convs`` 3x3 ConvModules followed by a 1x1 conv.
    The localisation conv predicts ``C + 10`` channels together with the
    class conv: ltrb (4, ``exp(min(x, log 1e4)) * stride`` from the cell
    centre; the clip only stops fp32 overflow), gliding
    vertex offsets (4, ``(clamp(sigmoid(x), 0.01, 1) - 0.01) / 0.99``), the
    polygon/HBB area ratio (1, hard sigmoid; above ``hbb_ratio_thr`` the
    offsets are zeroed and the box is its HBB) and objectness (1); the class
    conv predicts C logits. Quadrilaterals are decoded with mmrotate's
    ``GVFixCoder``; the score is ``sigmoid(obj) * sigmoid(cls)``.

    LO-Det's GGHL variant (``LODet_GGHL``) predicts straight from the neck
    with 1x1 convs: ``stacked_convs=0``.

    Args:
        num_classes (int): number of classes.
        in_channels (Sequence[int]): channels of each input level.
        feat_channels (Sequence[int], optional): branch width per level;
            ``None`` doubles ``in_channels`` as GGHL does.
        stacked_convs (int): 3x3 convs per branch. Defaults to 1.
        strides (Sequence[int]): strides of the levels.
        hbb_ratio_thr (float): area ratio above which the box decodes to its
            HBB. Defaults to 0.9.
        predict_box_type (str): ``'qbox'`` (``QuadriBoxes``, NMS with
            ``nms_quadri``) or ``'rbox'`` (``RotatedBoxes``: the minimum-area
            rectangle in mmrotate's ``le90`` convention, NMS with
            ``nms_rotated``).
        prior_prob (float): initial objectness/class probability.
        loss_jol (dict): config of :class:`JOLLoss`.
        conv_cfg, norm_cfg, act_cfg (dict): of the 3x3 branch convs.
        train_cfg (dict): must hold ``assigner`` (a :class:`GGHLAssigner`
            config; ``num_classes`` is filled in).
        test_cfg (dict): ``nms_pre``, ``score_thr``, ``nms``,
            ``max_per_img`` and optional ``min_bbox_size`` as in mmdet.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 feat_channels: Optional[Sequence[int]] = None,
                 stacked_convs: int = 1,
                 strides: Sequence[int] = (8, 16, 32),
                 hbb_ratio_thr: float = 0.9,
                 predict_box_type: str = 'qbox',
                 prior_prob: float = 0.01,
                 loss_jol: ConfigType = dict(type='JOLLoss'),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.1),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(strides):
            raise MMRSKDError(
                f'GGHLHead: {len(in_channels)} in_channels for '
                f'{len(strides)} strides; give one entry per FPN level')
        if predict_box_type not in ('qbox', 'rbox'):
            raise MMRSKDError(
                f"GGHLHead: predict_box_type='{predict_box_type}'; use "
                "'qbox' or 'rbox'")
        if feat_channels is None:
            feat_channels = [2 * c for c in in_channels]
        if len(feat_channels) != len(in_channels):
            raise MMRSKDError(
                f'GGHLHead: {len(feat_channels)} feat_channels for '
                f'{len(in_channels)} levels; give one per level or None')
        self.num_classes = num_classes
        self.in_channels = tuple(in_channels)
        self.feat_channels = tuple(feat_channels)
        self.stacked_convs = stacked_convs
        self.strides = tuple(strides)
        self.hbb_ratio_thr = hbb_ratio_thr
        self.predict_box_type = predict_box_type
        self.prior_prob = prior_prob
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.prior_generator = MlvlPointGenerator(strides, offset=0.5)
        self.orc_coder = GVFixCoder()
        self.loss_jol = MODELS.build(loss_jol)
        if train_cfg is not None:
            if 'assigner' not in train_cfg:
                raise MMRSKDError(
                    'GGHLHead: train_cfg has no "assigner"; add '
                    "train_cfg=dict(assigner=dict(type='GGHLAssigner'))")
            self.assigner = TASK_UTILS.build(
                train_cfg['assigner'],
                default_args=dict(num_classes=num_classes))
        self._init_layers()

    def _branch(self, in_channels: int, feat_channels: int) -> nn.Module:
        convs = [
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for i in range(self.stacked_convs)
        ]
        return nn.Sequential(*convs)

    def _init_layers(self) -> None:
        self.loc_branches = nn.ModuleList()
        self.cls_branches = nn.ModuleList()
        self.conv_locs = nn.ModuleList()
        self.conv_clss = nn.ModuleList()
        for in_c, feat_c in zip(self.in_channels, self.feat_channels):
            out_c = feat_c if self.stacked_convs > 0 else in_c
            self.loc_branches.append(self._branch(in_c, feat_c))
            self.cls_branches.append(self._branch(in_c, feat_c))
            self.conv_locs.append(nn.Conv2d(out_c, NUM_LOC_CHANNELS, 1))
            self.conv_clss.append(nn.Conv2d(out_c, self.num_classes, 1))

    def init_weights(self) -> None:
        """GGHL initialises predictions with N(0, 0.01); objectness and class
        biases start at ``prior_prob`` so the background loss starts low."""
        super().init_weights()
        bias_prior = bias_init_with_prob(self.prior_prob)
        for conv_loc, conv_cls in zip(self.conv_locs, self.conv_clss):
            normal_init(conv_loc, std=0.01)
            normal_init(conv_cls, std=0.01, bias=bias_prior)
            nn.init.constant_(conv_loc.bias[-1], bias_prior)

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], ...]:
        """Run the head on every level.

        Args:
            x (tuple[Tensor]): FPN features, (B, in_channels[l], H_l, W_l).

        Returns:
            tuple[list[Tensor]]: per level

            - cls_scores (B, C, H, W): class logits.
            - bbox_preds (B, 4, H, W): raw ltrb (log of distance / stride).
            - orc_preds (B, 4, H, W): raw gliding-vertex offsets.
            - ratio_preds (B, 1, H, W): raw area ratios.
            - objectnesses (B, 1, H, W): objectness logits.
        """
        if len(x) != len(self.strides):
            raise MMRSKDError(
                f'GGHLHead: got {len(x)} feature levels, configured for '
                f'{len(self.strides)}; match the neck outputs to strides')
        return multi_apply(self.forward_single, x, self.loc_branches,
                           self.cls_branches, self.conv_locs, self.conv_clss)

    def forward_single(self, x: Tensor, loc_branch: nn.Module,
                       cls_branch: nn.Module, conv_loc: nn.Module,
                       conv_cls: nn.Module) -> Tuple[Tensor, ...]:
        loc = conv_loc(loc_branch(x))
        bbox_pred, orc_pred, ratio_pred, objectness = loc.split(
            LOC_SPLIT, dim=1)
        return conv_cls(cls_branch(x)), bbox_pred, orc_pred, ratio_pred, \
            objectness

    def decode(self, bbox_pred: Tensor, orc_pred: Tensor, ratio_pred: Tensor,
               points: Tensor, stride: float,
               max_shape: Optional[Sequence[int]] = None
               ) -> Dict[str, Tensor]:
        """Decode raw outputs of one level (flattened), see
        :func:`decode_level`: ``distances``, ``bboxes``, ``orc``,
        ``ratios``."""
        return decode_level(bbox_pred, orc_pred, ratio_pred, points, stride,
                            self.hbb_ratio_thr, max_shape)

    def get_targets(self, featmap_sizes: List[Tuple[int, int]],
                    batch_gt_instances: InstanceList,
                    device: torch.device) -> List[Dict[str, Tensor]]:
        """Dense targets of a batch, per level.

        Args:
            featmap_sizes (list[tuple]): (H_l, W_l) per level.
            batch_gt_instances (list[InstanceData]): GT ``bboxes`` (qbox,
                rbox or hbox) and ``labels`` per image.
            device (torch.device): device of the targets.

        Returns:
            list[dict[str, Tensor]]: per level, see :func:`gghl_targets`.
        """
        if not hasattr(self, 'assigner'):
            raise MMRSKDError(
                'GGHLHead: no assigner; build the head with '
                "train_cfg=dict(assigner=dict(type='GGHLAssigner'))")
        return gghl_targets(self.assigner, self.prior_generator,
                            self.strides, featmap_sizes, batch_gt_instances,
                            device)

    def loss_terms_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        orc_preds: List[Tensor],
        ratio_preds: List[Tensor],
        objectnesses: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_targets: Optional[List[Dict[str, Tensor]]] = None
    ) -> Tuple[List[Dict[str, Tensor]], List[Dict[str, Tensor]]]:
        """Per-location JOL terms, e.g. for prediction distillation.

        Teacher and student heads with the same strides and input share
        targets: pass the ``batch_targets`` returned for one to the other.

        Args:
            cls_scores, bbox_preds, orc_preds, ratio_preds, objectnesses
                (list[Tensor]): outputs of :meth:`forward`.
            batch_gt_instances (list[InstanceData]): GT per image; unused
                when ``batch_targets`` is given.
            batch_targets (list[dict], optional): from :meth:`get_targets`.

        Returns:
            tuple: per level the ``reduction='none'`` output of
            :class:`JOLLoss` (``loss_<term>`` (B, N_l), ``box_errors``,
            ``num_pos`` (B,)), and the targets used.
        """
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        if batch_targets is None:
            batch_targets = self.get_targets(featmap_sizes,
                                             batch_gt_instances,
                                             cls_scores[0].device)
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=bbox_preds[0].device)
        terms = []
        for level, stride in enumerate(self.strides):
            height, width = featmap_sizes[level]
            # fp32: exp() of fp16 ltrb overflows under mixed precision
            decoded = self.decode(
                flatten_level(bbox_preds[level]).float(),
                flatten_level(orc_preds[level]).float(),
                flatten_level(ratio_preds[level]).float(), points[level],
                stride)
            terms.append(
                self.loss_jol(
                    flatten_level(cls_scores[level]),
                    flatten_level(objectnesses[level])[..., 0],
                    decoded['bboxes'],
                    decoded['distances'],
                    decoded['orc'],
                    decoded['ratios'],
                    batch_targets[level],
                    stride=stride,
                    img_area=float(height * width * stride * stride),
                    reduction_override='none'))
        return terms, batch_targets

    def loss_by_feat(
            self,
            cls_scores: List[Tensor],
            bbox_preds: List[Tensor],
            orc_preds: List[Tensor],
            ratio_preds: List[Tensor],
            objectnesses: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """JOL summed over levels; each level is normalised by its own
        number of positives per image, as in GGHL.

        ``batch_gt_instances_ignore`` (DOTA's difficult objects) is not
        used: GGHL trains on every labelled object.

        Returns:
            dict[str, Tensor]: ``loss_fg``, ``loss_bg``, ``loss_pos``,
            ``loss_neg``, ``loss_iou``, ``loss_obb``, ``loss_area``,
            ``loss_l``.
        """
        terms, _ = self.loss_terms_by_feat(cls_scores, bbox_preds, orc_preds,
                                           ratio_preds, objectnesses,
                                           batch_gt_instances)
        losses = {}
        for level_terms in terms:
            for name, value in self.loss_jol.reduce(level_terms).items():
                losses[name] = losses.get(name, 0) + value
        return losses

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        orc_preds: List[Tensor],
                        ratio_preds: List[Tensor],
                        objectnesses: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Decode and NMS the outputs of :meth:`forward`.

        Returns:
            list[InstanceData]: per image ``bboxes`` (``QuadriBoxes`` (K, 8)
            or ``RotatedBoxes`` (K, 5), by ``predict_box_type``), ``scores``
            (K,) and ``labels`` (K,).
        """
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise MMRSKDError(
                'GGHLHead: no test_cfg; add test_cfg=dict(nms_pre=2000, '
                "score_thr=0.05, nms=dict(type='nms_quadri', "
                'iou_threshold=0.45), max_per_img=2000) to the model')
        cfg = ConfigDict(copy.deepcopy(cfg))
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
        results_list = []
        for img_id, img_meta in enumerate(batch_img_metas):
            results = decode_image(
                [[output[img_id] for output in outputs]
                 for outputs in zip(cls_scores, bbox_preds, orc_preds,
                                    ratio_preds, objectnesses)],
                points, self.strides, self.hbb_ratio_thr, self.orc_coder,
                self.predict_box_type, img_meta['img_shape'],
                cfg.get('nms_pre', -1), cfg.get('score_thr', 0))
            results_list.append(
                self._bbox_post_process(
                    results, cfg, rescale=rescale, with_nms=with_nms,
                    img_meta=img_meta))
        return results_list
