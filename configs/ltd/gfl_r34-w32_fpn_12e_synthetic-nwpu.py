# The teacher of the LTD CPU config: deeper and twice as wide as the student
# in the backbone and the head; the same FPN width (LTD's pyramid-pooled term
# compares raw student and teacher FPN features).
_base_ = './gfl_r18-w16_fpn_12e_synthetic-nwpu.py'
model = dict(
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]),
    bbox_head=dict(feat_channels=64, stacked_convs=4))
