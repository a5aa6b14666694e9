# RetinaNet R18-FPN on DIOR: the student of the PKD/FGD DIOR configs.
_base_ = './retinanet_r50_fpn_1x_dior.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
