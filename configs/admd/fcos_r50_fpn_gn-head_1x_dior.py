# FCOS R50-FPN (GN head) on DIOR: the student of the ADMD FCOS configs.
_base_ = './fcos_r101_fpn_gn-head_1x_dior.py'
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
