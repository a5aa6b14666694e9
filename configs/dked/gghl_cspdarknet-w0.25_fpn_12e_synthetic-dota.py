# A narrow GGHL for CPU runs on the synthetic DOTA-format set (256 px,
# 5 classes): the teacher of the synthetic DKED configs. mmdet's Darknet-53
# has no width option, so the backbone is mmdet's CSPDarknet (P5, depth
# x0.33, width x0.25: 64/128/256 channels at strides 8/16/32); neck, head,
# assignment and loss are GGHL's, a quarter of GGHL's widths.
#   python tools/misc/make_synthetic_data.py --format dota \
#       --out data/synthetic/dota --num-images 150
_base_ = '../gghl/gghl_darknet53_fpn_1xb4-12e_synthetic-dota.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.CSPDarknet',
        deepen_factor=0.33,
        widen_factor=0.25,
        out_indices=(2, 3, 4)),
    neck=dict(in_channels=(64, 128, 256), out_channels=(32, 64, 128)),
    bbox_head=dict(
        in_channels=(32, 64, 128), feat_channels=(64, 128, 256)))
