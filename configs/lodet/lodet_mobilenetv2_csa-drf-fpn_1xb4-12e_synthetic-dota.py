# LO-Det (LODet_GGHL) on the synthetic DOTA-format set (256 px, 5 classes)
# for CPU runs and tests: the real architecture without downloaded weights,
# AdamW, 12 epochs.
#   python tools/misc/make_synthetic_data.py --format dota \
#       --out data/synthetic/dota --num-images 150
_base_ = [
    '../_base_/datasets/synthetic_dota.py', '../_base_/default_runtime.py',
    './_base_/lodet_mobilenetv2_csa-drf-fpn.py'
]

model = dict(
    bbox_head=dict(num_classes=5),
    test_cfg=dict(score_thr=0.05, max_per_img=100))

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmdet.Resize', scale=(256, 256), keep_ratio=True),
    dict(
        type='mmdet.RandomFlip',
        prob=0.75,
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(256, 256), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = val_pipeline

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    _delete_=True,
    type='RSDetMetric',
    box_type='qbox',
    iou_thrs=0.5,
    eval_mode='11points')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        eta_min=1e-5)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=4, max_keep_ckpts=1),
    visualization=dict(type='mmdet.DetVisualizationHook', draw=False))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
