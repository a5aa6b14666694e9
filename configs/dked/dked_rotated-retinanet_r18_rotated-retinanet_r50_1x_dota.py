# DKED's feature terms on a detector outside the paper: Rotated RetinaNet
# R50 -> R18 (le90), DOTA v1.0 split patches, mmrotate's 1x schedule. The
# prediction term needs GGHL-layout heads and is not used; G is GGHL's
# oriented-Gaussian heat map rendered from the GT on the five FPN levels,
# each object on the level(s) its size selects (thresholds 64/128/256/512
# px at 1024 px input, near the RetinaNet anchor sizes of each level) [A].
# The teacher is mmrotate's zoo model.
_base_ = [
    '../_base_/datasets/dota.py', '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]
fpn_strides = (8, 16, 32, 64, 128)
model = dict(
    type='SingleTeacherDistiller',
    student='mmrskd::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r18_fpn_1x_dota.py',
    teacher='mmrotate::rotated_retinanet/'
    'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py',
    teacher_ckpt='https://download.openmmlab.com/mmrotate/v0.1.0/'
    'rotated_retinanet/rotated_retinanet_obb_r50_fpn_1x_dota_le90/'
    'rotated_retinanet_obb_r50_fpn_1x_dota_le90-c0097bc4.pth',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck'),
    # student adapter of the correlation term: ResNet stage 4, 512 -> 2048
    connectors=dict(
        fcd_adapter=dict(
            type='ConvBNConnector', in_channels=512, out_channels=2048)),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            in_channels=2048,
            teacher_embedding='frozen',
            loss_weight=1.0),
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            in_channels=(256, ) * 5,
            teacher_ddc='frozen',
            assigner=dict(
                type='GGHLAssigner',
                level_size_thresholds=(64, 128, 256, 512),
                ref_img_size=1024,
                window_radius_max=(4, 3, 2, 2, 2)),
            strides=fpn_strides,
            loss_weight=1.0)),
    loss_mappings=dict(
        loss_fcd=dict(
            preds_S=dict(source='s_backbone', index=-1,
                         connector='fcd_adapter'),
            preds_T='t_backbone[-1]'),
        loss_drfd=dict(
            student_feats='s_fpn',
            teacher_feats='t_fpn',
            batch_gt_instances='gt_instances')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
