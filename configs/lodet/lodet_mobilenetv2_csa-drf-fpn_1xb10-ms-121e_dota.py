# LO-Det (LODet_GGHL) on DOTA v1.0 split patches (1024 px, tested at 800 px;
# multi-scale 384-768 in training, as LO-Det). GT stays quadrilateral (no
# ConvertBoxType) and is scored as polygons, like the DOTA server.
_base_ = [
    '../_base_/datasets/dota.py', '../_base_/default_runtime.py',
    './_base_/lodet_mobilenetv2_csa-drf-fpn.py',
    './_base_/schedule_sgd_cosine_121e.py'
]

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(
        type='mmdet.RandomResize',
        scale=[(384, 384), (768, 768)],
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
    # loaded after Resize so the ground truth keeps original coordinates
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=10, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(box_type='qbox')
test_evaluator = val_evaluator
