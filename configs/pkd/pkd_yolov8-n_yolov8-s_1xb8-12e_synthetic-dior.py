# PKD, YOLOv8-s -> YOLOv8-n on synthetic DIOR: the classic feature-KD
# baseline of CSAKD's pair in benchmarks/kd_gain.py (same taps, adapter,
# teacher and schedule as csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior).
_base_ = ['../yolov8/yolov8_n_1xb8-12e_synthetic-dior.py']
model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::yolov8/yolov8_n_1xb8-12e_synthetic-dior.py',
    teacher='mmrskd::csakd/yolov8_s_1xb8-12e_synthetic-dior.py',
    teacher_ckpt='work_dirs/yolov8_s_1xb8-12e_synthetic-dior/epoch_12.pth',
    taps=dict(s_neck='student.neck', t_neck='teacher.neck'),
    connectors=dict(
        adapt=dict(
            type='MultiLevelConnector',
            num_levels=3,
            connector=dict(type='ConvBNConnector'),
            in_channels=[64, 128, 256],  # YOLOv8-n neck (P3, P4, P5)
            out_channels=[128, 256, 512])),  # YOLOv8-s neck
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(
        loss_pkd=dict(
            preds_S=dict(source='s_neck', connector='adapt'),
            preds_T='t_neck')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
val_evaluator = dict(iou_thrs='coco')
test_evaluator = val_evaluator
