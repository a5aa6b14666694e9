# PKD, GGHL -> LO-Det on synthetic DOTA: the classic feature-KD baseline of
# DKED's pair in benchmarks/kd_gain.py (the FPN levels DKED's response term
# uses, the same teacher and schedule as
# dked_lodet_mobilenetv2-w0.5_gghl_cspdarknet-w0.25_12e_synthetic-dota).
_base_ = [
    '../dked/lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota.py'
]
model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/'
    'lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota.py',
    teacher='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher_ckpt='work_dirs/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota/'
    'epoch_12.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(
        adapt=dict(
            type='MultiLevelConnector',
            num_levels=3,
            connector=dict(type='ConvBNConnector'),
            in_channels=[64, 128, 256],  # LO-Det CSA-DRF-FPN
            out_channels=[32, 64, 128])),  # GGHL FPN
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(
        loss_pkd=dict(
            preds_S=dict(source='s_fpn', connector='adapt'),
            preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
