# DKED's feature terms on a detector outside the paper: Rotated RetinaNet
# R50 -> R18 (le90), DOTA v1.0 split patches, mmrotate's 1x schedule. The
# teacher is mmrotate's zoo model.
_base_ = [
    '../_base_/datasets/dota.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py', './_base_/dked_fpn_feature_terms.py'
]
model = dict(
    student='mmrskd::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_retinanet/rotated_retinanet_obb_r50_fpn_1x_dota_le90/'
    'rotated_retinanet_obb_r50_fpn_1x_dota_le90-c0097bc4.pth',
    # ResNet stage 4: 512 (R18) -> 2048 (R50)
    connectors=dict(fcd_adapter=dict(in_channels=512, out_channels=2048)),
    distill_losses=dict(
        loss_fcd=dict(in_channels=2048),
        loss_drfd=dict(in_channels=(256, ) * 5)))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
