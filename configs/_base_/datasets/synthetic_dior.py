# Synthetic DIOR (256 px, the generator's default classes), written by
#   python tools/misc/make_synthetic_data.py --format dior \
#       --out data/synthetic/dior
# Same loader, splits and metric as dior.py.
_base_ = './dior.py'

data_root = 'data/synthetic/dior/'
metainfo = dict(
    classes=('airplane', 'ship', 'storagetank', 'tenniscourt', 'vehicle'))

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
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
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(datasets=[
        dict(
            type='DIORDataset',
            data_root=data_root,
            ann_file=f'ImageSets/Main/{split}.txt',
            data_prefix=dict(img_path='JPEGImages-trainval'),
            metainfo=metainfo,
            filter_cfg=dict(filter_empty_gt=True),
            pipeline=train_pipeline) for split in ('train', 'val')
    ]))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=val_pipeline))
test_dataloader = val_dataloader
