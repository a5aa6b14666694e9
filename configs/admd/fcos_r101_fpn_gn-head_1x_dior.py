# FCOS R101-FPN (GN head) on DIOR (horizontal, 20 classes, 800 px, 1x): the
# teacher of the ADMD FCOS configs. mmdet's FCOS schedule: a constant
# warm-up at lr/3, doubled lr and no weight decay for the biases.
_base_ = [
    './_base_/fcos_r50_fpn.py', '../_base_/datasets/dior.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    bbox_head=dict(num_classes=20))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
