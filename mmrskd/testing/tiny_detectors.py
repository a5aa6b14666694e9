"""Small versions of the stock detectors, built from the same components as
their full-size configs (ResNet + FPN + stock heads) with fewer channels."""
import torch
from mmengine.config import ConfigDict

DATA_PREPROCESSOR = dict(
    type='mmdet.DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
# mmrotate heads take box objects; mmdet heads take tensors.
ROTATED_DATA_PREPROCESSOR = dict(DATA_PREPROCESSOR, boxtype2tensor=False)


def _resnet_fpn(depth, base_channels, fpn_channels, num_outs=5,
                add_extra_convs='on_input'):
    expansion = 1 if depth in (18, 34) else 4
    stage_channels = [base_channels * expansion * 2**i for i in range(4)]
    backbone = dict(type='mmdet.ResNet', depth=depth,
                    base_channels=base_channels, num_stages=4,
                    out_indices=(0, 1, 2, 3), frozen_stages=-1,
                    norm_cfg=dict(type='BN', requires_grad=True),
                    norm_eval=False, style='pytorch')
    neck = dict(type='mmdet.FPN', in_channels=stage_channels,
                out_channels=fpn_channels, start_level=1,
                add_extra_convs=add_extra_convs, num_outs=num_outs)
    return backbone, neck


def tiny_rotated_retinanet_cfg(depth=18, base_channels=8, fpn_channels=32,
                               num_classes=3, stacked_convs=2,
                               angle_version='le90'):
    """Rotated RetinaNet (mmrotate) with a narrow ResNet."""
    backbone, neck = _resnet_fpn(depth, base_channels, fpn_channels)
    return ConfigDict(
        type='mmdet.RetinaNet',
        data_preprocessor=ROTATED_DATA_PREPROCESSOR,
        backbone=backbone,
        neck=neck,
        bbox_head=dict(
            type='mmdet.RetinaHead',
            num_classes=num_classes,
            in_channels=fpn_channels,
            stacked_convs=stacked_convs,
            feat_channels=fpn_channels,
            anchor_generator=dict(
                type='mmrotate.FakeRotatedAnchorGenerator',
                angle_version=angle_version, octave_base_scale=4,
                scales_per_octave=3, ratios=[1.0, 0.5, 2.0],
                strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(
                type='mmrotate.DeltaXYWHTRBBoxCoder',
                angle_version=angle_version, norm_factor=None,
                edge_swap=True, proj_xy=True,
                target_means=(.0, .0, .0, .0, .0),
                target_stds=(1.0, 1.0, 1.0, 1.0, 1.0)),
            loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True,
                          gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(
                type='mmdet.MaxIoUAssigner', pos_iou_thr=0.5,
                neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1,
                iou_calculator=dict(type='mmrotate.RBboxOverlaps2D')),
            sampler=dict(type='mmdet.PseudoSampler'),
            allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms_rotated', iou_threshold=0.1),
                      max_per_img=100))


def tiny_retinanet_cfg(depth=18, base_channels=8, fpn_channels=32,
                       num_classes=3, stacked_convs=2):
    """Horizontal RetinaNet (mmdet) with a narrow ResNet."""
    backbone, neck = _resnet_fpn(depth, base_channels, fpn_channels)
    return ConfigDict(
        type='mmdet.RetinaNet',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=backbone,
        neck=neck,
        bbox_head=dict(
            type='mmdet.RetinaHead', num_classes=num_classes,
            in_channels=fpn_channels, stacked_convs=stacked_convs,
            feat_channels=fpn_channels,
            anchor_generator=dict(type='mmdet.AnchorGenerator',
                                  octave_base_scale=4, scales_per_octave=3,
                                  ratios=[0.5, 1.0, 2.0],
                                  strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(type='mmdet.DeltaXYWHBBoxCoder',
                            target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True,
                          gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='mmdet.MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='mmdet.PseudoSampler'),
            allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100))


def tiny_fcos_cfg(depth=18, base_channels=8, fpn_channels=32, num_classes=3,
                  stacked_convs=2):
    """Horizontal FCOS (mmdet) with a narrow ResNet."""
    backbone, neck = _resnet_fpn(depth, base_channels, fpn_channels,
                                 add_extra_convs='on_output')
    return ConfigDict(
        type='mmdet.FCOS',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=backbone,
        neck=neck,
        bbox_head=dict(
            type='mmdet.FCOSHead', num_classes=num_classes,
            in_channels=fpn_channels, stacked_convs=stacked_convs,
            feat_channels=fpn_channels, strides=[8, 16, 32, 64, 128],
            loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True,
                          gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='mmdet.IoULoss', loss_weight=1.0),
            loss_centerness=dict(type='mmdet.CrossEntropyLoss',
                                 use_sigmoid=True, loss_weight=1.0)),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100))


def tiny_gfl_cfg(depth=18, base_channels=8, fpn_channels=32, num_classes=3,
                 stacked_convs=2):
    """Horizontal GFL (mmdet) with a narrow ResNet."""
    backbone, neck = _resnet_fpn(depth, base_channels, fpn_channels,
                                 add_extra_convs='on_output')
    return ConfigDict(
        type='mmdet.GFL',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=backbone,
        neck=neck,
        bbox_head=dict(
            type='mmdet.GFLHead', num_classes=num_classes,
            in_channels=fpn_channels, stacked_convs=stacked_convs,
            feat_channels=fpn_channels,
            anchor_generator=dict(type='mmdet.AnchorGenerator', ratios=[1.0],
                                  octave_base_scale=8, scales_per_octave=1,
                                  strides=[8, 16, 32, 64, 128]),
            loss_cls=dict(type='mmdet.QualityFocalLoss', use_sigmoid=True,
                          beta=2.0, loss_weight=1.0),
            loss_dfl=dict(type='mmdet.DistributionFocalLoss',
                          loss_weight=0.25),
            reg_max=16,
            loss_bbox=dict(type='mmdet.GIoULoss', loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type='mmdet.ATSSAssigner', topk=9),
                       allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.6),
                      max_per_img=100))


def trains_on_rotated_boxes(cfg) -> bool:
    """Whether a config's training data reach the model as rotated boxes
    (its pipeline, wrappers included, converts them to ``rbox``): the box
    type :func:`demo_batch` should draw for it."""
    return 'rbox' in str(cfg.train_dataloader.dataset)


def demo_batch(model, num_images=2, size=64, num_boxes=3, num_classes=3,
               rotated=True, seed=0):
    """A preprocessed training batch of random boxes for ``model``.

    Returns:
        tuple: ``(inputs (N, 3, H, W) Tensor, list[DetDataSample])``.
    """
    from mmengine.structures import InstanceData
    from mmdet.structures.bbox import HorizontalBoxes
    from mmrotate.structures.bbox import RotatedBoxes

    gen = torch.Generator().manual_seed(seed)
    batch_gt_instances, images = [], []
    for _ in range(num_images):
        centres = torch.rand(num_boxes, 2, generator=gen) * size * 0.6 \
            + size * 0.2
        sizes = torch.rand(num_boxes, 2, generator=gen) * size * 0.3 \
            + size * 0.15
        instances = InstanceData(labels=torch.randint(
            num_classes, (num_boxes, ), generator=gen))
        if rotated:
            angles = (torch.rand(num_boxes, 1, generator=gen) - 0.5) * 3.0
            instances.bboxes = RotatedBoxes(
                torch.cat([centres, sizes, angles], dim=1))
        else:
            instances.bboxes = HorizontalBoxes(
                torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1))
        batch_gt_instances.append(instances)
        images.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                    dtype=torch.uint8))
    return preprocess_batch(model, images, batch_gt_instances)


def preprocess_batch(model, images, batch_gt_instances):
    """A training batch of ``images`` and their GT through the model's data
    preprocessor.

    Args:
        model (nn.Module): has a ``data_preprocessor``.
        images (list[Tensor]): ``(3, H, W)`` uint8 BGR images.
        batch_gt_instances (list[InstanceData]): ``bboxes`` and ``labels``
            per image, in input pixels.

    Returns:
        tuple: ``(inputs (N, 3, H', W') Tensor, list[DetDataSample])``.
    """
    from mmdet.structures import DetDataSample
    samples = []
    for image, instances in zip(images, batch_gt_instances):
        shape = tuple(image.shape[1:])
        sample = DetDataSample(metainfo=dict(
            img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0),
            img_id=len(samples)))
        sample.gt_instances = instances
        samples.append(sample)
    batch = model.data_preprocessor(
        dict(inputs=list(images), data_samples=samples), training=True)
    return batch['inputs'], batch['data_samples']
