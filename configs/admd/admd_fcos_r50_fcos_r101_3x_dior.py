# ADMD, FCOS R101 -> R50 (GN head) on DIOR (800 px), 3x (36 epochs), with
# the student's FCOS optimiser settings. Train the teacher first:
#   python tools/train.py configs/admd/fcos_r101_fpn_gn-head_1x_dior.py
_base_ = [
    './_base_/admd_fpn.py', '../_base_/datasets/dior.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::admd/fcos_r50_fpn_gn-head_1x_dior.py',
    teacher='mmrskd::admd/fcos_r101_fpn_gn-head_1x_dior.py',
    teacher_ckpt='work_dirs/fcos_r101_fpn_gn-head_1x_dior/epoch_12.pth')
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True,
         milestones=[27, 33], gamma=0.1)
]
optim_wrapper = dict(paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
