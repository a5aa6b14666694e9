# ADMD (ISPRS JPRS 2025) on the five FPN levels of a dense detector: the
# discrepancy-masked feature loss through a per-level 1x1 conv adapter
# (InsDist's convention), kept from vanishing by the adaptive
# weight-increasing module. The dataset configs set student, teacher,
# teacher_ckpt and the DistillValLoop.
#
# loss_weight 0.02 [A]: the paper's weights are not public; grad_balance
# (below) sets the term's actual scale, so this only matters without it.
# level_norm='teacher': each level's loss is relative to the teacher's
# energy there, so the unnormalised extra levels (P6, P7) do not outweigh
# P3-P5 by 10^3 (README, "What we found").
fpn_channels = 256
model = dict(
    type='SingleTeacherDistiller',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(
        fpn_adapter=dict(
            type='MultiLevelConnector',
            num_levels=5,
            connector=dict(
                type='ConvBNConnector',
                in_channels=fpn_channels,
                out_channels=fpn_channels,
                norm_cfg=None))),
    distill_losses=dict(
        loss_admd=dict(
            # tau in units of the image's mean discrepancy (scale free)
            type='ADMDLoss', temperature=1.0, discrepancy_norm='mean',
            level_norm='teacher', fg_prior=False, loss_weight=0.02)),
    loss_mappings=dict(
        loss_admd=dict(
            preds_S=dict(source='s_fpn', connector='fpn_adapter'),
            preds_T='t_fpn',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas')),
    # The rule that carries the weight over to other detectors (README,
    # "What we found"): over the first 100 iterations the term's scale is
    # calibrated to half the detection loss's gradient at the student's FPN,
    # then frozen; the weight-increasing module acts on top of it. Without
    # it the term's gradient there was 350-780x the detection gradient.
    grad_balance=dict(target_ratio=0.5, modules=['student.neck'],
                      interval=10, calibration_iters=100),
    loss_schedules=dict(
        loss_admd=dict(
            type='ADMDAdaptiveWeight',
            warmup_iters=100,
            momentum=0.99,
            max_weight=10.0)))
