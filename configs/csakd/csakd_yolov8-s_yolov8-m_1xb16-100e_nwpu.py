# CSAKD, YOLOv8-m -> YOLOv8-s on NWPU VHR-10 (800 px, mmrskd's split, 100
# epochs, YOLOv8's recipe).
# Train the teacher first:
#   python tools/train.py configs/yolov8/yolov8_m_1xb16-100e_nwpu.py
_base_ = [
    '../yolov8/yolov8_s_1xb16-100e_nwpu.py', './_base_/csakd.py',
    './_base_/csakd_grad_balance.py'
]
student_channels = [128, 256, 512]  # YOLOv8-s neck (P3, P4, P5)
teacher_channels = [192, 384, 576]  # YOLOv8-m neck
model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::yolov8/yolov8_s_1xb16-100e_nwpu.py',
    teacher='mmrskd::yolov8/yolov8_m_1xb16-100e_nwpu.py',
    teacher_ckpt='work_dirs/yolov8_m_1xb16-100e_nwpu/epoch_100.pth',
    taps=_base_.csakd_taps,
    connectors=dict(
        adapt=dict(
            _base_.csakd_adapter,
            in_channels=student_channels,
            out_channels=teacher_channels)),
    cross_forwards=_base_.csakd_cross_forwards,
    distill_losses=dict(
        loss_cross=_base_.csakd_loss_cross,
        loss_agka=dict(_base_.csakd_loss_agka, in_channels=teacher_channels)),
    loss_mappings=_base_.csakd_loss_mappings,
    grad_balance=_base_.csakd_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# the paper reports mAP50 and mAP50:95
val_evaluator = dict(iou_thrs='coco')
test_evaluator = val_evaluator
