# DKED self-distillation on the synthetic DOTA-format set (256 px, 5
# classes) on a CPU: the narrow GGHL trained again under its trained self.
# Equal widths: no adapters. Train the teacher first:
#   python tools/train.py \
#       configs/dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py
_base_ = [
    './gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    './_base_/dked_gghl.py'
]

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher_ckpt='work_dirs/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota/'
    'epoch_12.pth',
    taps=_base_.dked_gghl_taps,
    distill_losses=dict(
        loss_fcd=dict(_base_.dked_gghl_loss_fcd, in_channels=256),
        loss_drfd=dict(_base_.dked_gghl_loss_drfd, in_channels=(32, 64, 128)),
        loss_pred=_base_.dked_gghl_loss_pred),
    loss_mappings=dict(
        _base_.dked_gghl_loss_mappings,
        loss_fcd=dict(preds_S='s_backbone[-1]', preds_T='t_backbone[-1]')),
    grad_balance=_base_.dked_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
