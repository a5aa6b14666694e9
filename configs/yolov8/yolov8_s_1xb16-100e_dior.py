# YOLOv8-s on DIOR (horizontal boxes, 20 classes in DIOR's order), 800 px,
# trained on train+val, evaluated on test (VOC07 mAP@0.5). YOLOv8's
# augmentation: Mosaic + random scale/translate (affine, no rotation/shear),
# HSV jitter and horizontal flips; Mosaic and the affine are switched off for
# the last 10 epochs. From scratch: no ImageNet/COCO weights are downloaded.
_base_ = [
    '../_base_/datasets/dior.py', '../_base_/default_runtime.py',
    './_base_/yolov8_s.py', './_base_/schedule_sgd_linear_100e.py'
]

img_scale = (800, 800)  # (w, h) = DIOR's image size
close_mosaic_epochs = 10
train_batch_size_per_gpu = 16
train_num_workers = 8

# loading only: the mixing dataset applies the rest to several images
pre_transform = [
    dict(type='mmdet.LoadImageFromFile', backend_args={{_base_.backend_args}}),
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
        # crop the 2x mosaic canvas back to img_scale
        border=(-img_scale[0] // 2, -img_scale[1] // 2),
        border_val=(114, 114, 114)),
    dict(type='mmdet.YOLOXHSVRandomAug'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    # no-ops after Mosaic; they size the images once Mosaic is off
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
    batch_size=train_batch_size_per_gpu,
    num_workers=train_num_workers,
    dataset=dict(
        _delete_=True,
        type='mmdet.MultiImageMixDataset',
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                dict(
                    type={{_base_.dataset_type}},
                    data_root={{_base_.data_root}},
                    ann_file=f'ImageSets/Main/{split}.txt',
                    data_prefix=dict(img_path='JPEGImages-trainval'),
                    filter_cfg=dict(filter_empty_gt=True),
                    pipeline=pre_transform) for split in ('train', 'val')
            ]),
        pipeline=train_pipeline))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=10, max_keep_ckpts=3,
        save_best='auto'))
train_cfg = dict(
    val_interval=10,
    dynamic_intervals=[(_base_.max_epochs - close_mosaic_epochs, 1)])
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='mmdet.ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        strict_load=False,
        priority=49),
    # drops Mosaic and RandomAffine from the mixing dataset; it switches
    # once epoch + 1 >= max_epochs - num_last_epochs
    dict(
        type='mmdet.YOLOXModeSwitchHook',
        num_last_epochs=close_mosaic_epochs - 1,
        skip_type_keys=('Mosaic', 'RandomAffine'),
        priority=48)
]
