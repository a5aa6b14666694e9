# CSAKD, RTMDet-m -> RTMDet-s on DIOR (800 px, 100 epochs): a detector outside
# the paper's. RTMDet has no DFL bins, so the cross box term is GIoU between
# the boxes that the cross and teacher side distances span (CrossKD's box
# KD for distance heads). Train the teacher first:
#   python tools/train.py configs/csakd/rtmdet_m_1xb16-100e_dior.py
_base_ = [
    './rtmdet_s_1xb16-100e_dior.py', './_base_/csakd.py',
    './_base_/csakd_grad_balance.py'
]
student_channels = 128  # RTMDet-s neck, every level
teacher_channels = 192  # RTMDet-m neck
model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::csakd/rtmdet_s_1xb16-100e_dior.py',
    teacher='mmrskd::csakd/rtmdet_m_1xb16-100e_dior.py',
    teacher_ckpt='work_dirs/rtmdet_m_1xb16-100e_dior/epoch_100.pth',
    # (cls logits, distances) per level from the head
    taps=_base_.csakd_taps,
    connectors=dict(
        adapt=dict(
            type='MultiLevelConnector',
            num_levels=3,
            connector=dict(
                type='ConvBNConnector',
                in_channels=student_channels,
                out_channels=teacher_channels))),
    cross_forwards=_base_.csakd_cross_forwards,
    distill_losses=dict(
        loss_cross=dict(
            _base_.csakd_loss_cross,
            loss_reg=dict(type='mmdet.GIoULoss', loss_weight=1.0),
            reg_mode='distance'),
        loss_agka=dict(
            _base_.csakd_loss_agka, in_channels=[teacher_channels] * 3)),
    loss_mappings=dict(
        _base_.csakd_loss_mappings,
        loss_cross=dict(
            _base_.csakd_loss_mappings.loss_cross,
            reg_S='cross_head[1]',
            reg_T='t_head[1]')),
    grad_balance=_base_.csakd_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# the paper reports mAP50 and mAP50:95
val_evaluator = dict(iou_thrs='coco')
test_evaluator = val_evaluator
