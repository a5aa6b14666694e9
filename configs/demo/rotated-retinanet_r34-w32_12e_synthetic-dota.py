# The demo teacher: deeper and twice as wide as the student.
_base_ = ['./_base_.py', './_rotated_retinanet_tiny.py']

depth = 34
base_channels = 32
fpn_channels = 128
stacked_convs = 4
model = dict(
    backbone=dict(depth=depth, base_channels=base_channels),
    neck=dict(in_channels=[base_channels * 2**i for i in range(4)],
              out_channels=fpn_channels),
    bbox_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels,
                   stacked_convs=stacked_convs))
