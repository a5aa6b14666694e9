# YOLOv8-s on the synthetic DIOR-format set (256 px, 12 epochs): the CPU
# teacher of the CSAKD synthetic pair, twice as wide as the student
# (configs/yolov8/yolov8_n_1xb8-12e_synthetic-dior.py; same data, schedule).
_base_ = '../yolov8/yolov8_n_1xb8-12e_synthetic-dior.py'
widen_factor = 0.5
model = dict(
    backbone=dict(widen_factor=widen_factor),
    neck=dict(widen_factor=widen_factor),
    bbox_head=dict(widen_factor=widen_factor))
