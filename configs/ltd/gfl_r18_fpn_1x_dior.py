# GFL R18-FPN on DIOR: the student of the LTD DIOR config.
_base_ = './gfl_r101_fpn_1x_dior.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
