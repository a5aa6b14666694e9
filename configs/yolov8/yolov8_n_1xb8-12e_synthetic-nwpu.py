# YOLOv8-n on the synthetic NWPU-format set (256 px, 5 classes) for CPU runs
# and tests: the real architecture and augmentation, from scratch, 12 epochs
# (about 2 minutes on 1 CPU core for 100 images; val mAP50 0.47).
#   python tools/misc/make_synthetic_data.py --format nwpu \
#       --out data/synthetic/nwpu --num-images 100
_base_ = [
    '../_base_/datasets/synthetic_nwpu_vhr10.py',
    '../_base_/default_runtime.py', './_base_/yolov8_s.py',
    './_base_/schedule_sgd_linear_100e.py'
]

img_scale = (256, 256)  # (w, h)
max_epochs = 12
warmup_epochs = 1
close_mosaic_epochs = 2
deepen_factor = 0.33
widen_factor = 0.25

# BN statistics with YOLOv8's momentum 0.03 lag too far behind the weights
# in a run of ~150 iterations (eval-mode mAP stays at 0); 0.1 keeps up
norm_cfg = dict(type='BN', momentum=0.1, eps=0.001)

model = dict(
    backbone=dict(
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        norm_cfg=norm_cfg),
    neck=dict(
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        norm_cfg=norm_cfg),
    bbox_head=dict(
        num_classes=5, widen_factor=widen_factor, norm_cfg=norm_cfg),
    test_cfg=dict(nms_pre=1000, max_per_img=100))

pre_transform = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True)
]
train_pipeline = [
    dict(
        type='mmdet.Mosaic',
        img_scale=img_scale,
        center_ratio_range=(0.5, 1.5),
        pad_val=114.0),
    dict(
        type='mmdet.RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.5, 1.5),
        border=(-img_scale[0] // 2, -img_scale[1] // 2),
        border_val=(114, 114, 114)),
    dict(type='mmdet.YOLOXHSVRandomAug'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(
        type='mmdet.Pad',
        size=img_scale,
        pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(
        type='mmdet.FilterAnnotations',
        min_gt_bbox_wh=(1, 1),
        keep_empty=False),
    dict(type='mmdet.PackDetInputs')
]

train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        _delete_=True,
        type='mmdet.MultiImageMixDataset',
        dataset=dict(
            type='NWPUVHR10Dataset',
            data_root={{_base_.data_root}},
            ann_file={{_base_.split_file}},
            split='train',
            metainfo={{_base_.metainfo}},
            filter_cfg=dict(filter_empty_gt=True),
            pipeline=pre_transform),
        pipeline=train_pipeline))

train_cfg = dict(
    max_epochs=max_epochs,
    val_interval=4,
    dynamic_intervals=[(max_epochs - close_mosaic_epochs, 1)])
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=warmup_epochs),
    dict(
        type='LinearMomentum',
        start_factor=0.8 / 0.937,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=warmup_epochs),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.01,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=max_epochs)
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=5))
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='mmdet.ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        strict_load=False,
        priority=49),
    dict(
        type='mmdet.YOLOXModeSwitchHook',
        num_last_epochs=close_mosaic_epochs - 1,
        skip_type_keys=('Mosaic', 'RandomAffine'),
        priority=48)
]
