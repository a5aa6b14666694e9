# The demo teacher: deeper and twice as wide as the student.
_base_ = ['./_base_.py', './_rotated_retinanet_tiny.py']

model = dict(
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128, stacked_convs=4))
