# YOLOv8-s on the synthetic NWPU VHR-10-format set (256 px, 12 epochs): the
# CPU teacher of the CSAKD synthetic pair, twice as wide as the student
# (configs/yolov8/yolov8_n_1xb8-12e_synthetic-nwpu.py; same data, schedule).
_base_ = '../yolov8/yolov8_n_1xb8-12e_synthetic-nwpu.py'
widen_factor = 0.5
model = dict(
    backbone=dict(widen_factor=widen_factor),
    neck=dict(widen_factor=widen_factor),
    bbox_head=dict(widen_factor=widen_factor))
