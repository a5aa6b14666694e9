# RetinaNet R50-FPN on DIOR (horizontal, 20 classes, 800 px): a PKD/FGD
# teacher. ImageNet-pretrained backbone, as in mmdet.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/dior.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]
model = dict(bbox_head=dict(num_classes=20))
