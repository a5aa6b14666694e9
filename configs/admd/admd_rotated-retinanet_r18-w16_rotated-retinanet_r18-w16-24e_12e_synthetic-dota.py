# ADMD on the CPU demo pair (narrow Rotated RetinaNets, synthetic DOTA).
# Train the teacher first (tools/demo.py does).
_base_ = ['../demo/_base_.py', './_base_/admd_fpn.py']
model = dict(
    student='mmrskd::demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='mmrskd::demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    connectors=dict(
        fpn_adapter=dict(connector=dict(in_channels=64, out_channels=64))),
    # the base's rule for a 64-channel FPN: 1 / C
    distill_losses=dict(loss_admd=dict(loss_weight=1 / 64)),
    loss_schedules=dict(loss_admd=dict(warmup_iters=20)))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
