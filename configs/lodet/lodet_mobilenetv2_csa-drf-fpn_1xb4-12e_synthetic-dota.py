# LO-Det (LODet_GGHL) on the synthetic DOTA-format set (256 px, 5 classes)
# for CPU runs and tests: the real architecture without downloaded weights,
# AdamW, 12 epochs.
#   python tools/misc/make_synthetic_data.py --format dota \
#       --out data/synthetic/dota --num-images 150
_base_ = [
    '../_base_/datasets/synthetic_dota.py',
    '../_base_/schedules/synthetic_adamw_12e.py',
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

# the shared CPU schedule at half its learning rate
optim_wrapper = dict(optimizer=dict(lr=1e-3))
