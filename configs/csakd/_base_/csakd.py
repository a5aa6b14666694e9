# CSAKD (cross supervising with attention): the parts of the distiller that
# do not depend on the model widths, written for YOLOv8's DFL head (heads
# with side distances instead, e.g. RTMDet, switch loss_cross to
# reg_mode='distance' with an IoU loss and map reg_* to the distances; see
# csakd_rtmdet-s_rtmdet-m_1xb16-100e_dior.py). A pair config builds it with
#   model = dict(_delete_=True, type='SingleTeacherDistiller',
#                student=..., teacher=..., teacher_ckpt=...,
#                taps=_base_.csakd_taps,
#                connectors=dict(adapt=dict(
#                    _base_.csakd_adapter, in_channels=<student neck>,
#                    out_channels=<teacher neck>)),
#                cross_forwards=_base_.csakd_cross_forwards,
#                distill_losses=dict(
#                    loss_cross=_base_.csakd_loss_cross,
#                    loss_agka=dict(_base_.csakd_loss_agka,
#                                   in_channels=<teacher neck channels>)),
#                loss_mappings=_base_.csakd_loss_mappings)
# (the full-size configs add grad_balance from ./csakd_grad_balance.py)
#
#   L = L_det + alpha * loss_cross + beta * loss_agka,  alpha = beta = 1
csakd_taps = dict(
    s_neck='student.neck',
    t_neck='teacher.neck',
    # (cls logits, distances, DFL bin logits) per level
    t_head='teacher.bbox_head')
# The student adapter: a 1x1 conv + BN per level, student -> teacher neck
# channels; a pair config adds in_channels and out_channels (one per level).
csakd_adapter = dict(
    type='MultiLevelConnector',
    num_levels=3,
    connector=dict(type='ConvBNConnector'))
# The adapted student neck maps through the frozen teacher head, with
# gradient to the student only. align_to='t_neck' first gives each channel
# the teacher's mean/std (CrossKD's align_scale; off by default).
csakd_cross_forwards = dict(
    cross_head=dict(
        source=dict(source='s_neck', connector='adapt'),
        modules=['bbox_head'],
        align_to=None))
# Cross predictions supervised by the teacher's: KD-QFL on the class logits,
# KL on YOLOv8's 16 DFL bins per side (LDLoss counts reg_max + 1 bins),
# levels weighted by AAWM.
csakd_loss_cross = dict(
    type='CSAKDCrossSupervisionLoss',
    loss_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
    loss_reg=dict(
        type='LDLoss', T=1.0, reg_max=15, class_reduction='sum',
        loss_weight=4.0),
    reg_mode='distribution',
    normalizer='teacher_score',
    aawm=True,
    loss_weight=1.0)
# AGKA: attention from a teacher query and a student key (1x1 convs to
# C / 4 channels, trained, distillation-only), attended student aligned to
# the teacher; squared error summed over channels, averaged over positions.
# A pair config adds in_channels = the teacher neck channels per level.
csakd_loss_agka = dict(
    type='CSAKDAttentionAlignmentLoss',
    reduction=4,
    attend_teacher=False,
    normalizer='positions',
    loss_weight=1.0)
csakd_loss_mappings = dict(
    loss_cross=dict(
        cls_S='cross_head[0]',
        cls_T='t_head[0]',
        reg_S='cross_head[2]',
        reg_T='t_head[2]',
        feats_S=dict(source='s_neck', connector='adapt'),
        feats_T='t_neck'),
    loss_agka=dict(
        preds_S=dict(source='s_neck', connector='adapt'), preds_T='t_neck'))
