# DKED on the synthetic DOTA-format set (256 px, 5 classes) on a CPU: a
# narrow LO-Det student, a narrow GGHL teacher, the same GGHL head layout.
# Train the teacher first:
#   python tools/train.py \
#       configs/dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py
_base_ = [
    './lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota.py',
    './_base_/dked_gghl.py'
]

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/'
    'lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota.py',
    teacher='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py',
    teacher_ckpt='work_dirs/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota/'
    'epoch_12.pth',
    taps=_base_.dked_gghl_taps,
    # student adapter of the correlation term, last backbone stage:
    # MobileNetV2 1280 ch -> CSPDarknet 256 ch
    connectors=dict(
        fcd_adapter=dict(
            type='ConvBNConnector', in_channels=1280, out_channels=256)),
    distill_losses=dict(
        loss_fcd=dict(_base_.dked_gghl_loss_fcd, in_channels=256),
        loss_drfd=dict(
            _base_.dked_gghl_loss_drfd,
            in_channels=(32, 64, 128),
            student_channels=(64, 128, 256)),
        loss_pred=_base_.dked_gghl_loss_pred),
    loss_mappings=_base_.dked_gghl_loss_mappings,
    grad_balance=_base_.dked_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
