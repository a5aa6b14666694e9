# GFL R101-FPN on DIOR (horizontal, 20 classes, 800 px, 1x): the teacher of
# the LTD and ADMD GFL configs on DIOR. ImageNet-pretrained backbone.
_base_ = [
    './_base_/gfl_r50_fpn.py', '../_base_/datasets/dior.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    bbox_head=dict(num_classes=20))
