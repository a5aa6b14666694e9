# The README demo's distillation: PKD on the five FPN levels from the
# longer-trained teacher of the same architecture (no connector needed).
# tools/demo.py trains the teacher first and passes its checkpoint.
_base_ = ['./_base_.py']

model = dict(
    type='SingleTeacherDistiller',
    student='configs/demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='configs/demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(loss_pkd=dict(preds_S='s_fpn', preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
