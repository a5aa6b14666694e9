# A narrow GFL R18 (base width 16, FPN 32) on synthetic NWPU VHR-10 (256 px,
# 5 classes): the student of the LTD CPU config.
#   python tools/misc/make_synthetic_data.py --format nwpu \
#       --out data/synthetic/nwpu
_base_ = [
    './_base_/gfl_r50_fpn.py', '../_base_/datasets/synthetic_nwpu_vhr10.py',
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
        num_classes=5, in_channels=32, feat_channels=32, stacked_convs=2),
    test_cfg=dict(nms_pre=1000, max_per_img=100))
