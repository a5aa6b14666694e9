# PKD on the narrow FCOS pair, synthetic DIOR: the classic feature-KD
# baseline of ADMD's horizontal pair in benchmarks/kd_gain.py (same FPN taps,
# adapter, teacher and schedule as admd_fcos_r18-w16_fcos_r34-w32_12e_...).
_base_ = [
    '../_base_/datasets/synthetic_dior.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::admd/fcos_r18-w16_fpn_12e_synthetic-dior.py',
    teacher='mmrskd::admd/fcos_r34-w32_fpn_12e_synthetic-dior.py',
    teacher_ckpt='work_dirs/fcos_r34-w32_fpn_12e_synthetic-dior/epoch_12.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(
        adapt=dict(
            type='MultiLevelConnector',
            num_levels=5,
            connector=dict(
                type='ConvBNConnector', in_channels=32, out_channels=64))),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(
        loss_pkd=dict(
            preds_S=dict(source='s_fpn', connector='adapt'),
            preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
