# DKED self-distillation on DOTA v1.0 split patches: GGHL (Darknet-53)
# trained again from scratch under a trained GGHL of the same architecture,
# with GGHL's schedule and pipeline (151 epochs, multi-scale 736-832, batch
# 18). Equal widths: no adapters. Train the teacher first:
#   python tools/train.py configs/gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py
_base_ = ['../gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py']

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py',
    teacher='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py',
    teacher_ckpt='work_dirs/gghl_darknet53_fpn_1xb18-ms-151e_dota/'
    'epoch_151.pth',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck',
        s_head='student.bbox_head',
        t_head='teacher.bbox_head',
        # the student's label assignment: GGHL's Gaussian heat map G and
        # the positives of the prediction terms
        s_targets=dict(model='student', method='bbox_head.get_targets')),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            in_channels=1024,
            teacher_embedding='frozen',
            loss_weight=1.0),
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            in_channels=(128, 256, 512),
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
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
