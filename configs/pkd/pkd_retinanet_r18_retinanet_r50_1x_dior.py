# PKD (Cao et al., NeurIPS 2022) on the five FPN levels, RetinaNet R50 -> R18,
# DIOR. Train the teacher first:
#   python tools/train.py configs/retinanet/retinanet_r50_fpn_1x_dior.py
_base_ = [
    '../_base_/datasets/dior.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::retinanet/retinanet_r18_fpn_1x_dior.py',
    teacher='mmrskd::retinanet/retinanet_r50_fpn_1x_dior.py',
    teacher_ckpt='work_dirs/retinanet_r50_fpn_1x_dior/epoch_12.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=6.0)),
    loss_mappings=dict(loss_pkd=dict(preds_S='s_fpn', preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
