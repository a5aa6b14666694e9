# YOLOv8-s (ultralytics v8.0; mmyolo 0.6 yolov8_s_syncbn_fast): C2f
# CSP-Darknet + SPPF, C2f PAFPN, decoupled anchor-free head with DFL bins
# (reg_max 16), task-aligned assignment (top 10, alpha 0.5, beta 6), losses
# BCE x0.5, CIoU x7.5, DFL x1.5/4. Other sizes change the three factors:
#   n 0.33/0.25/1024, s 0.33/0.5/1024, m 0.67/0.75/768, l 1.0/1.0/512.
num_classes = 20
deepen_factor = 0.33
widen_factor = 0.5
last_stage_out_channels = 1024
neck_channels = [256, 512, last_stage_out_channels]  # before widen_factor

model = dict(
    type='mmdet.SingleStageDetector',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='YOLOv8CSPDarknet',
        arch='P5',
        last_stage_out_channels=last_stage_out_channels,
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        type='YOLOv8PAFPN',
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        in_channels=neck_channels,
        out_channels=neck_channels,
        num_csp_blocks=3,
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        type='YOLOv8Head',
        num_classes=num_classes,
        in_channels=neck_channels,
        widen_factor=widen_factor,
        reg_max=16,
        prior_generator=dict(
            type='mmdet.MlvlPointGenerator', offset=0.5, strides=[8, 16,
                                                                  32]),
        bbox_coder=dict(type='mmdet.DistancePointBBoxCoder'),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss',
            use_sigmoid=True,
            reduction='mean',
            loss_weight=0.5),
        loss_bbox=dict(
            type='mmdet.CIoULoss', reduction='mean', loss_weight=7.5),
        loss_dfl=dict(
            type='mmdet.DistributionFocalLoss',
            reduction='mean',
            loss_weight=1.5 / 4),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU', inplace=True)),
    train_cfg=dict(
        assigner=dict(
            type='BatchTaskAlignedAssigner', topk=10, alpha=0.5, beta=6.0)),
    test_cfg=dict(
        nms_pre=30000,
        score_thr=0.001,
        nms=dict(type='nms', iou_threshold=0.7),
        max_per_img=300))
