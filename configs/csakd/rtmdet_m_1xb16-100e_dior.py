# RTMDet-m on DIOR: the teacher of the CSAKD RTMDet pair; recipe of
# rtmdet_s_1xb16-100e_dior.py with mmdet's RTMDet-m sizes.
_base_ = './rtmdet_s_1xb16-100e_dior.py'
model = dict(
    backbone=dict(deepen_factor=0.67, widen_factor=0.75),
    neck=dict(in_channels=[192, 384, 768], out_channels=192,
              num_csp_blocks=2),
    bbox_head=dict(in_channels=192, feat_channels=192, exp_on_reg=True))
