# GFL R101-FPN on NWPU VHR-10: the teacher of LTD's released setting
# (trained 50 epochs on NWPU VHR-10 with the student's schedule and
# pipeline: (1000, 600) keep-ratio resize, horizontal flip 0.5, 1 GPU x 8).
_base_ = './gfl_r18_fpn_1xb8-50e_nwpu.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
