# The README demo's distillation: PKD on the five FPN levels from the
# longer-trained teacher of the same architecture (no connector needed).
# tools/demo.py trains the teacher first and passes its checkpoint.
_base_ = ('./pkd_rotated-retinanet_r18-w16_rotated-retinanet_r34-w32_12e_'
          'synthetic-dota.py')

model = dict(
    teacher='configs/demo/rotated-retinanet_r18-w16_24e_synthetic-dota.py',
    teacher_ckpt='work_dirs/demo/teacher/epoch_24.pth',
    connectors=dict(_delete_=True),
    loss_mappings=dict(
        _delete_=True, loss_pkd=dict(preds_S='s_fpn', preds_T='t_fpn')))
