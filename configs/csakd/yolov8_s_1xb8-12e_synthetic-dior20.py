# The YOLOv8-s teacher of the 20-class synthetic DIOR pair.
_base_ = '../yolov8/yolov8_n_1xb8-12e_synthetic-dior20.py'
widen_factor = 0.5
model = dict(
    backbone=dict(widen_factor=widen_factor),
    neck=dict(widen_factor=widen_factor),
    bbox_head=dict(widen_factor=widen_factor))
