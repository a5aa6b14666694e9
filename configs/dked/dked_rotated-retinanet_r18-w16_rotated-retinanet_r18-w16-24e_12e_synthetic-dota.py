# DKED's feature terms on the CPU demo pair (narrow Rotated RetinaNets,
# synthetic DOTA, 256 px; the teacher is the same architecture trained twice
# as long: backbone 128 ch, FPN 64 ch). Train the teacher first (tools/demo.py
# does).
_base_ = ['../demo/_base_.py', './_base_/dked_fpn_feature_terms.py']
model = dict(
    student='mmrskd::demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='mmrskd::demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    connectors=dict(fcd_adapter=dict(in_channels=128, out_channels=128)),
    distill_losses=dict(
        # 1e4 and 0.02 (loss_drfd), not 1 and 1: at 1 the correlation term
        # was ~1e-5 (no effect) and the response term 40-800x the detection
        # loss (README, synthetic benchmark)
        loss_fcd=dict(in_channels=128, loss_weight=1e4),
        loss_drfd=dict(
            in_channels=(64, ) * 5,
            student_channels=(64, ) * 5,
            loss_weight=0.02)))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
