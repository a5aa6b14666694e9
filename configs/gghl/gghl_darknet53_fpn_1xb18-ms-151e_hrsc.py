# GGHL on HRSC2016 (one class 'ship'), 800 px inputs, multi-scale 736-832 in
# training; VOC07 and VOC12 mAP on quadrilaterals.
_base_ = [
    '../_base_/datasets/hrsc.py', '../_base_/default_runtime.py',
    './_base_/gghl_darknet53_fpn.py', './_base_/schedule_sgd_cosine_151e.py'
]

model = dict(bbox_head=dict(num_classes=1))

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(
        type='mmdet.RandomResize',
        scale=[(736, 736), (832, 832)],
        keep_ratio=True),
    dict(
        type='mmdet.RandomFlip',
        prob=0.75,
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.YOLOXHSVRandomAug'),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=18, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(
        type='RSDetMetric',
        box_type='qbox',
        iou_thrs=0.5,
        eval_mode='11points',
        prefix='voc07'),
    dict(
        type='RSDetMetric',
        box_type='qbox',
        iou_thrs=0.5,
        eval_mode='area',
        prefix='voc12')
]
test_evaluator = val_evaluator
