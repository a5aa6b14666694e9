# LTD, GFL R101 -> R18 on DIOR (800 px, 1x), the base's loss settings.
# Train the teacher first:
#   python tools/train.py configs/ltd/gfl_r101_fpn_1x_dior.py
_base_ = [
    './_base_/ltd_gfl.py', '../_base_/datasets/dior.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::ltd/gfl_r18_fpn_1x_dior.py',
    teacher='mmrskd::ltd/gfl_r101_fpn_1x_dior.py',
    teacher_ckpt='work_dirs/gfl_r101_fpn_1x_dior/epoch_12.pth')
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
