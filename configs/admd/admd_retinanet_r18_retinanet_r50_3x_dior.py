# ADMD, RetinaNet R50 -> R18 on DIOR (800 px), 3x (36 epochs). Train the
# teacher first:
#   python tools/train.py configs/retinanet/retinanet_r50_fpn_1x_dior.py
_base_ = [
    './_base_/admd_fpn.py', '../_base_/datasets/dior.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::retinanet/retinanet_r18_fpn_1x_dior.py',
    teacher='mmrskd::retinanet/retinanet_r50_fpn_1x_dior.py',
    teacher_ckpt='work_dirs/retinanet_r50_fpn_1x_dior/epoch_12.pth')
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
