# A narrow FCOS R18 (base width 16, FPN 32, GN head) on synthetic DIOR
# (256 px, 5 classes): the student of the ADMD CPU config.
#   python tools/misc/make_synthetic_data.py --format dior \
#       --out data/synthetic/dior
_base_ = [
    './_base_/fcos_r50_fpn.py', '../_base_/datasets/synthetic_dior.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(
        num_classes=5,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)))
