# LO-Det (Huang et al., TGRS 2021) in GGHL's LODet_GGHL form: MobileNetV2,
# CSA-DRF-FPN (channel separation-aggregation, CondConv dynamic receptive
# fields, DCNv2 bottom-up path) and the GGHL head predicting from the neck
# with 1x1 convs, so its outputs match GGHL's channel for channel.
num_classes = 15
img_size = 800

model = dict(
    type='mmdet.SingleStageDetector',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        boxtype2tensor=False),
    backbone=dict(
        type='mmdet.MobileNetV2',
        out_indices=(2, 4, 7),
        act_cfg=dict(type='ReLU6'),
        # ImageNet weights are not downloaded by default; see README.md
        init_cfg=None),
    neck=dict(
        type='CSADRFFPN',
        in_channels=(32, 96, 1280),
        out_channels=(256, 512, 1024),
        drf_dilations=(None, (2, 3), (4, 6)),
        shuffle_groups=4,
        num_experts=1,
        downsample_conv_cfg=dict(type='DCNv2', deform_groups=1),
        dropblock_cfg=dict(
            type='mmdet.DropBlock',
            drop_prob=0.1,
            block_size=3,
            warmup_iters=2000)),
    bbox_head=dict(
        type='GGHLHead',
        num_classes=num_classes,
        in_channels=(256, 512, 1024),
        stacked_convs=0,
        strides=(8, 16, 32),
        predict_box_type='qbox',
        loss_jol=dict(type='JOLLoss')),
    train_cfg=dict(
        assigner=dict(
            type='GGHLAssigner',
            level_size_thresholds=(3 * 16 / 0.7, 3 * 64 / 0.7),
            ref_img_size=img_size,
            level_overlap=1.2,
            min_gt_size=4.0,
            axis_exponent=0.7,
            window_radius_max=(4, 3, 2),
            pos_heatmap_thr=0.05)),
    test_cfg=dict(
        nms_pre=2000,
        score_thr=0.005,
        nms=dict(type='nms_quadri', iou_threshold=0.45),
        max_per_img=2000))
