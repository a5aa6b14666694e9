# DKED self-distillation on DOTA v1.0 split patches: GGHL (Darknet-53)
# trained again from scratch under a trained GGHL of the same architecture,
# with GGHL's schedule and pipeline (151 epochs, multi-scale 736-832, batch
# 18). Equal widths: no adapters. Train the teacher first:
#   python tools/train.py configs/gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py
_base_ = [
    '../gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py',
    './_base_/dked_gghl.py'
]

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py',
    teacher='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_dota.py',
    teacher_ckpt='work_dirs/gghl_darknet53_fpn_1xb18-ms-151e_dota/'
    'epoch_151.pth',
    taps=_base_.dked_gghl_taps,
    distill_losses=dict(
        loss_fcd=dict(_base_.dked_gghl_loss_fcd, in_channels=1024),
        loss_drfd=dict(_base_.dked_gghl_loss_drfd, in_channels=(128, 256, 512)),
        loss_pred=_base_.dked_gghl_loss_pred),
    loss_mappings=dict(
        _base_.dked_gghl_loss_mappings,
        loss_fcd=dict(preds_S='s_backbone[-1]', preds_T='t_backbone[-1]')),
    grad_balance=_base_.dked_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
