# LTD on the narrow GFL pair, synthetic NWPU VHR-10 (CPU runs and tests):
# the base's loss settings. Train the teacher first:
#   python tools/train.py configs/ltd/gfl_r34-w32_fpn_12e_synthetic-nwpu.py
_base_ = [
    './_base_/ltd_gfl.py', '../_base_/datasets/synthetic_nwpu_vhr10.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
fpn_channels = 32
model = dict(
    student='mmrskd::ltd/gfl_r18-w16_fpn_12e_synthetic-nwpu.py',
    teacher='mmrskd::ltd/gfl_r34-w32_fpn_12e_synthetic-nwpu.py',
    teacher_ckpt='work_dirs/gfl_r34-w32_fpn_12e_synthetic-nwpu/epoch_12.pth',
    connectors=dict(
        att_adapter=dict(
            connector=dict(
                in_channels=fpn_channels, out_channels=fpn_channels))),
    distill_losses=dict(
        loss_ccd=dict(in_channels=fpn_channels, out_channels=fpn_channels)))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
