# ADMD, Rotated RetinaNet R50 -> R18 (le90) on DOTA v1.0 split patches,
# 1x (12 epochs). The teacher is mmrotate's zoo model.
_base_ = [
    './_base_/admd_fpn.py', '../_base_/datasets/dota.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_retinanet/rotated_retinanet_obb_r50_fpn_1x_dota_le90/'
    'rotated_retinanet_obb_r50_fpn_1x_dota_le90-c0097bc4.pth')
optim_wrapper = dict(optimizer=dict(lr=0.0025))  # mmrotate: 1 GPU x 2 images
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
