# Rotated RetinaNet R18-FPN (le90) on DOTA v1.0 split patches: the student of
# the PKD/FGD DOTA configs. The R50 teacher is mmrotate's own config.
_base_ = [
    '../_base_/models/rotated-retinanet-rbox-le90_r50_fpn.py',
    '../_base_/datasets/dota.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
optim_wrapper = dict(optimizer=dict(lr=0.0025))  # mmrotate: 1 GPU x 2 images
