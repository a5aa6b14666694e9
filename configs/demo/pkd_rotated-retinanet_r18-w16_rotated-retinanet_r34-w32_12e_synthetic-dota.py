# The demo distillation: PKD on the five FPN levels, teacher from the
# teacher demo config (tools/demo.py trains it first and passes its
# checkpoint as model.teacher_ckpt).
_base_ = ['./_base_.py']

model = dict(
    type='SingleTeacherDistiller',
    student='configs/demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='configs/demo/rotated-retinanet_r34-w32_12e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_12.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(
        fpn_adapter=dict(
            type='MultiLevelConnector',
            num_levels=5,
            connector=dict(
                type='ConvBNConnector', in_channels=64, out_channels=128))),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(
        loss_pkd=dict(
            preds_S=dict(source='s_fpn', connector='fpn_adapter'),
            preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
