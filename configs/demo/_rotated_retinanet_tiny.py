# Rotated RetinaNet with a narrow ResNet-18 for the CPU demo (the student);
# the teacher config widens it.
_base_ = '../_base_/models/rotated-retinanet-rbox-le90_r50_fpn.py'

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(
        num_classes=5, in_channels=64, feat_channels=64, stacked_convs=2),
    test_cfg=dict(nms_pre=1000, max_per_img=200))
