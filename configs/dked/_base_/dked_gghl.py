# DKED's three terms between detectors that predict GGHL's layout (GGHL,
# LO-Det): feature correlation of the last backbone stage, direction-adaptive
# feature response on the three FPN levels weighted by G (from the student's
# own GGHL targets), and the teacher-bounded prediction distillation. A pair
# config builds its distiller from these pieces:
#   model = dict(_delete_=True, type='SingleTeacherDistiller',
#                student=..., teacher=..., teacher_ckpt=...,
#                taps=_base_.dked_gghl_taps,
#                [connectors=dict(fcd_adapter=...) when widths differ,]
#                distill_losses=dict(
#                    loss_fcd=dict(_base_.dked_gghl_loss_fcd,
#                                  in_channels=<teacher last stage>),
#                    loss_drfd=dict(_base_.dked_gghl_loss_drfd,
#                                   in_channels=<teacher FPN>, ...),
#                    loss_pred=_base_.dked_gghl_loss_pred),
#                loss_mappings=_base_.dked_gghl_loss_mappings)
dked_gghl_taps = dict(
    s_backbone='student.backbone',
    t_backbone='teacher.backbone',
    s_fpn='student.neck',
    t_fpn='teacher.neck',
    s_head='student.bbox_head',
    t_head='teacher.bbox_head',
    # the student's label assignment: GGHL's Gaussian heat map G and the
    # positives of the prediction terms
    s_targets=dict(model='student', method='bbox_head.get_targets'))
dked_gghl_loss_fcd = dict(
    type='DKEDFeatureCorrelationLoss', teacher_embedding='frozen',
    loss_weight=1.0)
dked_gghl_loss_drfd = dict(
    type='DKEDFeatureResponseLoss', teacher_ddc='frozen', loss_weight=1.0)
dked_gghl_loss_pred = dict(
    type='DKEDPredictionLoss',
    strides=(8, 16, 32),
    delta=0.0,
    lam=0.5,
    combine='reweight',
    loss_weight=1.0)
# the correlation term through the student adapter 'fcd_adapter'; equal
# widths map loss_fcd=dict(preds_S='s_backbone[-1]', ...) instead
dked_gghl_loss_mappings = dict(
    loss_fcd=dict(
        preds_S=dict(source='s_backbone', index=-1, connector='fcd_adapter'),
        preds_T='t_backbone[-1]'),
    loss_drfd=dict(
        student_feats='s_fpn', teacher_feats='t_fpn',
        batch_targets='s_targets'),
    loss_pred=dict(
        head_outs_S='s_head', head_outs_T='t_head',
        batch_targets='s_targets'))
# The rule that carries the paper's weights over to detectors that sum their
# losses differently (README, "What we found"): over the first 100
# iterations each term's scale is calibrated to half the detection loss's
# gradient at the student's FPN, then frozen. At the paper's weights the
# response term's gradient there was 40-46x the detection gradient.
# loss_fcd acts on the backbone only (no gradient at the FPN) and keeps its
# weight; so does loss_pred, whose 'reweight' value re-weights the student's
# own class loss and holds only at multiplier 1 (balanced to 2.4x, it gave
# the GT class term a negative weight).
dked_grad_balance = dict(
    target_ratio=0.5, modules=['student.neck'], interval=10,
    calibration_iters=100)
