# ADMD on the narrow FCOS pair, synthetic DIOR (CPU runs and tests). The
# short run ends before the adaptive weight's 100-iteration reference window
# would matter much, so the window is 20 iterations here. Train the teacher
# first:
#   python tools/train.py configs/admd/fcos_r34-w32_fpn_12e_synthetic-dior.py
_base_ = [
    './_base_/admd_fpn.py', '../_base_/datasets/synthetic_dior.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
model = dict(
    student='mmrskd::admd/fcos_r18-w16_fpn_12e_synthetic-dior.py',
    teacher='mmrskd::admd/fcos_r34-w32_fpn_12e_synthetic-dior.py',
    teacher_ckpt='work_dirs/fcos_r34-w32_fpn_12e_synthetic-dior/epoch_12.pth',
    connectors=dict(
        fpn_adapter=dict(connector=dict(in_channels=32, out_channels=64))),
    # the base's rule for the teacher's 64-channel FPN: 1 / C
    distill_losses=dict(loss_admd=dict(loss_weight=1 / 64)),
    loss_schedules=dict(loss_admd=dict(warmup_iters=20)))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
