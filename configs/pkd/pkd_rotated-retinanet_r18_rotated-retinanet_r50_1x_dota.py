# PKD on the five FPN levels, Rotated RetinaNet R50 -> R18 (le90), DOTA v1.0
# split patches. The teacher is mmrotate's zoo model.
_base_ = [
    '../_base_/datasets/dota.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_retinanet/rotated_retinanet_obb_r50_fpn_1x_dota_le90/'
    'rotated_retinanet_obb_r50_fpn_1x_dota_le90-c0097bc4.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=6.0)),
    loss_mappings=dict(loss_pkd=dict(preds_S='s_fpn', preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
