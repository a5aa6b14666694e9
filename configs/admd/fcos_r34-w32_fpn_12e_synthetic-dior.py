# The teacher of the ADMD CPU config: deeper and twice as wide as the
# student (FPN 64).
_base_ = './fcos_r18-w16_fpn_12e_synthetic-dior.py'
model = dict(
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=4))
