# DKED (ICASSP 2022) on HRSC2016: LO-Det (MobileNetV2, CSA-DRF-FPN, GGHL
# head) distilled from GGHL (Darknet-53); both predict GGHL's layout, so all
# three DKED terms apply. LO-Det's schedule and pipeline (121 epochs,
# multi-scale 384-768, batch 10). Train the teacher first:
#   python tools/train.py configs/gghl/gghl_darknet53_fpn_1xb18-ms-151e_hrsc.py
_base_ = [
    './lodet_mobilenetv2_csa-drf-fpn_gghl-norm_1xb10-ms-121e_hrsc.py',
    './_base_/dked_gghl.py'
]

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/'
    'lodet_mobilenetv2_csa-drf-fpn_gghl-norm_1xb10-ms-121e_hrsc.py',
    teacher='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_hrsc.py',
    teacher_ckpt='work_dirs/gghl_darknet53_fpn_1xb18-ms-151e_hrsc/'
    'epoch_151.pth',
    taps=_base_.dked_gghl_taps,
    # student adapter of the correlation term, last backbone stage:
    # MobileNetV2 1280 ch -> Darknet-53 1024 ch
    connectors=dict(
        fcd_adapter=dict(
            type='ConvBNConnector', in_channels=1280, out_channels=1024)),
    distill_losses=dict(
        loss_fcd=dict(_base_.dked_gghl_loss_fcd, in_channels=1024),
        # FPN: LO-Det 256/512/1024 ch -> GGHL 128/256/512 ch
        loss_drfd=dict(
            _base_.dked_gghl_loss_drfd,
            in_channels=(128, 256, 512),
            student_channels=(256, 512, 1024)),
        loss_pred=_base_.dked_gghl_loss_pred),
    loss_mappings=_base_.dked_gghl_loss_mappings,
    grad_balance=_base_.dked_grad_balance)
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
