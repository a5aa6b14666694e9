# GFL R50-FPN on DIOR: the student of the ADMD GFL configs (the R101 teacher
# is configs/ltd/gfl_r101_fpn_1x_dior.py, shared with LTD).
_base_ = '../ltd/gfl_r101_fpn_1x_dior.py'
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
