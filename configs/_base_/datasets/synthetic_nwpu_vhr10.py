# Synthetic NWPU VHR-10 (256x205 px, the generator's default classes),
# written with its split file by
#   python tools/misc/make_synthetic_data.py --format nwpu \
#       --out data/synthetic/nwpu
# Same loader and metric as nwpu_vhr10.py.
_base_ = './nwpu_vhr10.py'

data_root = 'data/synthetic/nwpu/'
split_file = 'nwpu_vhr10_split.json'
metainfo = dict(
    classes=('airplane', 'ship', 'storage tank', 'tennis court', 'vehicle'))

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
    dataset=dict(
        data_root=data_root,
        ann_file=split_file,
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=split_file,
        metainfo=metainfo,
        pipeline=val_pipeline))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=split_file,
        metainfo=metainfo,
        pipeline=test_pipeline))
