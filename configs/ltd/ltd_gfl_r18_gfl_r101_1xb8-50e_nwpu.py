# LTD, GFL R101 -> R18 on NWPU VHR-10: the authors' released schedule
# (50 epochs, SGD lr 0.001, 1 GPU x 8 images; their log reports 93.6 mAP50)
# with the base's loss settings (what gained on the native pair, README).
# Train the teacher first:
#   python tools/train.py configs/ltd/gfl_r101_fpn_1xb8-50e_nwpu.py
_base_ = [
    './_base_/ltd_gfl.py', './_base_/nwpu_vhr10_1000x600.py',
    './_base_/schedule_sgd_step_50e.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::ltd/gfl_r18_fpn_1xb8-50e_nwpu.py',
    teacher='mmrskd::ltd/gfl_r101_fpn_1xb8-50e_nwpu.py',
    teacher_ckpt='work_dirs/gfl_r101_fpn_1xb8-50e_nwpu/epoch_50.pth')
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
