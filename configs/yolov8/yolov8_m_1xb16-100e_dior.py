# YOLOv8-m: yolov8_s_1xb16-100e_dior.py with m's depth/width
# (deepen 0.67, widen 0.75, last stage 768 channels before widening).
_base_ = './yolov8_s_1xb16-100e_dior.py'

deepen_factor = 0.67
widen_factor = 0.75
last_stage_out_channels = 768
neck_channels = [256, 512, last_stage_out_channels]

model = dict(
    backbone=dict(
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        last_stage_out_channels=last_stage_out_channels),
    neck=dict(
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        in_channels=neck_channels,
        out_channels=neck_channels),
    bbox_head=dict(widen_factor=widen_factor, in_channels=neck_channels))
