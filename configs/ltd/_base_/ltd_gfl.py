# LTD (TGRS 2023) on a GFL pair. The authors' released loss settings
# (Molly6/LTD configs/all_gfl18-101.py) are
#   L = L_GFL + 1e-3 L_att + 0.5 L_CCD
#         + 0.025 (L_ld + L_ld_vlr) + 0.5 (L_kd + L_kd_vlr),
# the last four the terms of loss_tasd, the LD rows weighted by a softmax
# of the teacher's summed logits (weight_temperature=5). On the native pair
# of benchmarks/kd_gain.py that lost to the student alone; what gained
# (README, "what we found") is shipped here:
# * LD on the positives and the VLR with every row weighted 1
#   (weight_temperature=None): the released row weights put all the weight
#   on a handful of box sides;
# * CCD and attention calibrated by grad_balance to half the detection
#   gradient at the student's FPN (at their released weights they start at
#   90-100x and 5-6x of it);
# * the two classification terms off: on top of the unweighted LD they
#   lowered the gain (+2.3 -> +0.8, seed 1). Add them back with
#   terms.loss_kd / loss_kd_vlr (cls_mode='softmax' as released, or
#   'sigmoid').
# The dataset configs set student, teacher, teacher_ckpt and the
# DistillValLoop.
fpn_channels = 256
model = dict(
    type='SingleTeacherDistiller',
    taps=dict(
        s_fpn='student.neck',
        t_fpn='teacher.neck',
        s_head='student.bbox_head',
        t_head='teacher.bbox_head'),
    connectors=dict(
        # the 1x1 convs (with bias) of loss_att
        att_adapter=dict(
            type='MultiLevelConnector',
            num_levels=5,
            connector=dict(
                type='ConvBNConnector',
                in_channels=fpn_channels,
                out_channels=fpn_channels,
                norm_cfg=None))),
    distill_losses=dict(
        loss_att=dict(type='LTDAttentionLoss', temperature=0.1,
                      loss_weight=1e-3),
        loss_ccd=dict(
            type='LTDCCDLoss',
            in_channels=fpn_channels,
            out_channels=fpn_channels,
            binding='fusion',
            pooled_student='raw',
            loss_weight=0.5),
        # one TASD loss, its terms logged by name: localisation (DFL
        # distributions) on the positives and the VLR
        loss_tasd=dict(
            type='LTDTASDLoss',
            terms=dict(
                loss_ld=dict(task='reg', region='pos', T=10,
                             weight_temperature=None, loss_weight=0.025),
                loss_ld_vlr=dict(task='reg', region='vlr', T=10,
                                 weight_temperature=None,
                                 loss_weight=0.025)))),
    loss_mappings=dict(
        loss_att=dict(
            preds_S=dict(source='s_fpn', connector='att_adapter'),
            preds_T='t_fpn',
            feats_S='s_fpn'),
        loss_ccd=dict(student_feats='s_fpn', teacher_feats='t_fpn'),
        loss_tasd=dict(
            cls_logits_S='s_head[0]',
            cls_logits_T='t_head[0]',
            reg_logits_S='s_head[1]',
            reg_logits_T='t_head[1]',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas')),
    grad_balance=dict(
        target_ratio=dict(loss_ccd=0.5, loss_att=0.5),
        modules=['student.neck'],
        interval=10,
        calibration_iters=100))
