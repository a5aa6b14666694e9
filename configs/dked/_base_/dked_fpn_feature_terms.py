# DKED's feature terms on a five-level FPN detector (no GGHL head, so no
# prediction term): the non-local correlation of the last backbone stage
# and the direction-adaptive response on every FPN level, weighted by GGHL's
# oriented-Gaussian map G rendered from the GT, each object on the level(s)
# its size selects (thresholds 64/128/256/512 px at 1024 px input, near the
# RetinaNet anchor sizes of each level) [A]. A pair config sets student,
# teacher, teacher_ckpt, the adapter and loss widths (the student's last
# backbone stage -> the teacher's) and in_channels of loss_drfd.
fpn_strides = (8, 16, 32, 64, 128)
model = dict(
    type='SingleTeacherDistiller',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck'),
    connectors=dict(fcd_adapter=dict(type='ConvBNConnector')),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            teacher_embedding='frozen',
            loss_weight=1.0),
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            teacher_ddc='frozen',
            assigner=dict(
                type='GGHLAssigner',
                level_size_thresholds=(64, 128, 256, 512),
                ref_img_size=1024,
                window_radius_max=(4, 3, 2, 2, 2)),
            strides=fpn_strides,
            loss_weight=1.0)),
    loss_mappings=dict(
        loss_fcd=dict(
            preds_S=dict(source='s_backbone', index=-1,
                         connector='fcd_adapter'),
            preds_T='t_backbone[-1]'),
        loss_drfd=dict(
            student_feats='s_fpn',
            teacher_feats='t_fpn',
            batch_gt_instances='gt_instances')))
# a pair config adds (its other bases define these keys too):
#   val_cfg = dict(type='DistillValLoop', teacher_eval=...)
#   custom_hooks = [dict(type='DDCTemperatureHook')]  # DDC temperature
