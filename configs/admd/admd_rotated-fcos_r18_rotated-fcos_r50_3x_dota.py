# ADMD, Rotated FCOS R50 -> R18 (le90) on DOTA v1.0 split patches, 3x
# (36 epochs). The teacher is mmrotate's zoo model (it only runs forward, so
# its CUDA-only RotatedIoULoss is never called); the student uses mmrskd's
# RotatedIoULoss, which also runs on the CPU.
_base_ = [
    './_base_/admd_fpn.py', '../_base_/datasets/dota.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::ltd/rotated-fcos-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_fcos/rotated-fcos-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_fcos/rotated_fcos_r50_fpn_1x_dota_le90/'
    'rotated_fcos_r50_fpn_1x_dota_le90-d87568ed.pth')
optim_wrapper = dict(optimizer=dict(lr=0.0025))  # mmrotate: 1 GPU x 2 images
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
