# PKD on the narrow GFL pair, synthetic NWPU VHR-10: the classic feature-KD
# baseline of LTD's pair in benchmarks/kd_gain.py (same FPN taps, teacher and
# schedule as ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu; both FPNs are
# 32 channels wide, so no adapter).
_base_ = [
    '../_base_/datasets/synthetic_nwpu_vhr10.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::ltd/gfl_r18-w16_fpn_12e_synthetic-nwpu.py',
    teacher='mmrskd::ltd/gfl_r34-w32_fpn_12e_synthetic-nwpu.py',
    teacher_ckpt='work_dirs/gfl_r34-w32_fpn_12e_synthetic-nwpu/epoch_12.pth',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=2.0)),
    loss_mappings=dict(loss_pkd=dict(preds_S='s_fpn', preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
