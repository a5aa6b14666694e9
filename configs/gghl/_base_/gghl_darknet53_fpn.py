# GGHL (Huang et al., TIP 2022): Darknet-53, YOLOv3-style FPN with SPP and
# DropBlock, anchor-free oriented-Gaussian heatmap head trained with JOL.
# Predicts quadrilaterals (QuadriBoxes) NMSed with mmcv's nms_quadri.
num_classes = 15
img_size = 800  # GGHL's training/testing input; assigner thresholds scale

model = dict(
    type='mmdet.SingleStageDetector',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[0, 0, 0],
        std=[255., 255., 255.],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        boxtype2tensor=False),
    backbone=dict(
        type='mmdet.Darknet',
        depth=53,
        out_indices=(3, 4, 5),
        # ImageNet weights are not downloaded by default; see README.md
        init_cfg=None),
    neck=dict(
        type='GGHLNeck',
        in_channels=(256, 512, 1024),
        out_channels=(128, 256, 512),
        spp_kernel_sizes=(5, 9, 13),
        dropblock_cfg=dict(
            type='mmdet.DropBlock',
            drop_prob=0.1,
            block_size=3,
            warmup_iters=2000)),
    bbox_head=dict(
        type='GGHLHead',
        num_classes=num_classes,
        in_channels=(128, 256, 512),
        feat_channels=(256, 512, 1024),
        stacked_convs=1,
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
    # GGHL's README evaluates mAP at conf 0.005 (0.2 for visualisation)
    test_cfg=dict(
        nms_pre=2000,
        score_thr=0.005,
        nms=dict(type='nms_quadri', iou_threshold=0.45),
        max_per_img=2000))
