# A narrow LO-Det (LODet_GGHL) for CPU runs on the synthetic DOTA-format set
# (256 px, 5 classes): the student of the synthetic DKED configs, and its
# baseline. MobileNetV2 at width x0.5 (16/48/1280 channels at strides
# 8/16/32), a quarter of LO-Det's neck widths, and the input normalisation
# of its GGHL teacher (pixels / 255), which the distiller requires to match.
#   python tools/misc/make_synthetic_data.py --format dota \
#       --out data/synthetic/dota --num-images 150
_base_ = '../lodet/lodet_mobilenetv2_csa-drf-fpn_1xb4-12e_synthetic-dota.py'

model = dict(
    data_preprocessor=dict(mean=[0, 0, 0], std=[255., 255., 255.]),
    backbone=dict(widen_factor=0.5),
    neck=dict(in_channels=(16, 48, 1280), out_channels=(64, 128, 256)),
    bbox_head=dict(in_channels=(64, 128, 256)))
