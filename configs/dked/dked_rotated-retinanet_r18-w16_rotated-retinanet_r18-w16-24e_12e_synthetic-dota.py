# DKED's feature terms on the CPU demo pair (narrow Rotated RetinaNets,
# synthetic DOTA, 256 px): a detector outside the paper, a teacher of the
# same architecture trained twice as long (backbone 128 ch, FPN 64 ch), G rendered from the GT on the
# five FPN levels (the DOTA config's size thresholds, scaled to 256 px).
# Train the teacher first (tools/demo.py does).
_base_ = ['../demo/_base_.py']
fpn_strides = (8, 16, 32, 64, 128)
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='mmrskd::demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck'),
    connectors=dict(
        fcd_adapter=dict(
            type='ConvBNConnector', in_channels=128, out_channels=128)),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            in_channels=128,
            teacher_embedding='frozen',
            # 1e4 and 0.02 (loss_drfd), not 1 and 1: at 1 the correlation
            # term was ~1e-5 (no effect) and the response term 40-800x the
            # detection loss (README, synthetic benchmark)
            loss_weight=1e4),
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            in_channels=(64, ) * 5,
            student_channels=(64, ) * 5,
            teacher_ddc='frozen',
            assigner=dict(
                type='GGHLAssigner',
                level_size_thresholds=(64, 128, 256, 512),
                ref_img_size=1024,
                window_radius_max=(4, 3, 2, 2, 2)),
            strides=fpn_strides,
            loss_weight=0.02)),
    loss_mappings=dict(
        loss_fcd=dict(
            preds_S=dict(source='s_backbone', index=-1,
                         connector='fcd_adapter'),
            preds_T='t_backbone[-1]'),
        loss_drfd=dict(
            student_feats='s_fpn',
            teacher_feats='t_fpn',
            batch_gt_instances='gt_instances')))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
