# LTD (TGRS 2023) on a GFL pair, the authors' released loss settings
# (Molly6/LTD configs/all_gfl18-101.py):
#   L = L_GFL + 1e-3 L_att + 0.5 L_CCD
#         + 0.025 (L_ld + L_ld_vlr) + 0.5 (L_kd + L_kd_vlr),
# the last four the terms of loss_tasd.
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
        # one TASD loss, its four terms logged by name: localisation (DFL
        # distributions) and classification, each on the positives and
        # (released code: for both tasks) the VLR
        loss_tasd=dict(
            type='LTDTASDLoss',
            terms=dict(
                loss_ld=dict(task='reg', region='pos', T=10,
                             weight_temperature=5, loss_weight=0.025),
                loss_ld_vlr=dict(task='reg', region='vlr', T=10,
                                 weight_temperature=5, loss_weight=0.025),
                loss_kd=dict(task='cls', region='pos', T=2,
                             loss_weight=0.5),
                loss_kd_vlr=dict(task='cls', region='vlr', T=2,
                                 loss_weight=0.5)))),
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
            batch_img_metas='img_metas')))
