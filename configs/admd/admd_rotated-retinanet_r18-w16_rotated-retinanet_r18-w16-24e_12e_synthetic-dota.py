# ADMD on the CPU demo pair (narrow Rotated RetinaNets, synthetic DOTA), with
# rotated-GT foreground priors on the discrepancy mask. Train the teacher
# first (tools/demo.py does).
_base_ = ['../demo/_base_.py', './_base_/admd_fpn.py']
model = dict(
    student='mmrskd::demo/rotated-retinanet_r18-w16_12e_synthetic-dota.py',
    teacher='mmrskd::demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    connectors=dict(
        fpn_adapter=dict(connector=dict(in_channels=64, out_channels=64))),
    # the base weight: grad_balance (from _base_/admd_fpn.py) sets the
    # term's scale against the detection gradient, so no per-config constant
    distill_losses=dict(loss_admd=dict(fg_prior=True)),
    loss_schedules=dict(loss_admd=dict(warmup_iters=20)))
val_cfg = dict(type='DistillValLoop', teacher_eval='never')
