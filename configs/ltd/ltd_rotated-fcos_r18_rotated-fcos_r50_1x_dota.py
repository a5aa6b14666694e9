# LTD on a detector outside the paper: Rotated FCOS R50 -> R18 (le90), DOTA
# v1.0 split patches; the teacher is mmrotate's zoo model. Rotated FCOS
# regresses boxes directly (no DFL distributions), so TASD keeps its two
# classification terms; their regions come from ATSS/VLR on square
# pseudo-anchors (8 x stride, one per position) against the rotated GT.
_base_ = [
    './_base_/ltd_gfl.py', '../_base_/datasets/dota.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
model = dict(
    student='mmrskd::ltd/rotated-fcos-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_fcos/rotated-fcos-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_fcos/rotated_fcos_r50_fpn_1x_dota_le90/'
    'rotated_fcos_r50_fpn_1x_dota_le90-d87568ed.pth',
    # the base's classification terms only
    distill_losses=dict(
        loss_tasd=dict(
            terms=dict(
                _delete_=True,
                loss_kd=dict(task='cls', region='pos', T=2, loss_weight=0.5),
                loss_kd_vlr=dict(task='cls', region='vlr', T=2,
                                 loss_weight=0.5)))),
    loss_mappings=dict(
        loss_tasd=dict(
            _delete_=True,
            cls_logits_S='s_head[0]',
            cls_logits_T='t_head[0]',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas')))
optim_wrapper = dict(optimizer=dict(lr=0.0025))  # mmrotate: 1 GPU x 2 images
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
