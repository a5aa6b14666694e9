# DKED self-distillation on the synthetic DOTA-format set (256 px, 5
# classes) on a CPU: the narrow GGHL trained again under its trained self.
# Equal widths: no adapters. Train the teacher first:
#   python tools/train.py \
#       configs/dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py
_base_ = ['./gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py']

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher_ckpt='work_dirs/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota/'
    'epoch_12.pth',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck',
        s_head='student.bbox_head',
        t_head='teacher.bbox_head',
        s_targets=dict(model='student', method='bbox_head.get_targets')),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            in_channels=256,
            teacher_embedding='frozen',
            loss_weight=1.0),
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            in_channels=(32, 64, 128),
            teacher_ddc='frozen',
            loss_weight=1.0),
        loss_pred=dict(
            type='DKEDPredictionLoss',
            strides=(8, 16, 32),
            delta=0.0,
            lam=0.5,
            combine='reweight',
            loss_weight=1.0)),
    loss_mappings=dict(
        loss_fcd=dict(preds_S='s_backbone[-1]', preds_T='t_backbone[-1]'),
        loss_drfd=dict(
            student_feats='s_fpn',
            teacher_feats='t_fpn',
            batch_targets='s_targets'),
        loss_pred=dict(
            head_outs_S='s_head',
            head_outs_T='t_head',
            batch_targets='s_targets')))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
