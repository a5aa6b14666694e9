# DKED (ICASSP 2022) on HRSC2016: LO-Det (MobileNetV2, CSA-DRF-FPN, GGHL
# head) distilled from GGHL (Darknet-53); both predict GGHL's layout, so all
# three DKED terms apply. LO-Det's schedule and pipeline (121 epochs,
# multi-scale 384-768, batch 10). Train the teacher first:
#   python tools/train.py configs/gghl/gghl_darknet53_fpn_1xb18-ms-151e_hrsc.py
_base_ = ['./lodet_mobilenetv2_csa-drf-fpn_gghl-norm_1xb10-ms-121e_hrsc.py']

model = dict(
    _delete_=True,
    type='SingleTeacherDistiller',
    student='mmrskd::dked/'
    'lodet_mobilenetv2_csa-drf-fpn_gghl-norm_1xb10-ms-121e_hrsc.py',
    teacher='mmrskd::gghl/gghl_darknet53_fpn_1xb18-ms-151e_hrsc.py',
    teacher_ckpt='work_dirs/gghl_darknet53_fpn_1xb18-ms-151e_hrsc/'
    'epoch_151.pth',
    taps=dict(
        s_backbone='student.backbone',
        t_backbone='teacher.backbone',
        s_fpn='student.neck',
        t_fpn='teacher.neck',
        s_head='student.bbox_head',
        t_head='teacher.bbox_head',
        # the student's label assignment: GGHL's Gaussian heat map G and
        # the positives of the prediction terms
        s_targets=dict(model='student', method='bbox_head.get_targets')),
    # student adapter of the correlation term, last backbone stage:
    # MobileNetV2 1280 ch -> Darknet-53 1024 ch
    connectors=dict(
        fcd_adapter=dict(
            type='ConvBNConnector', in_channels=1280, out_channels=1024)),
    distill_losses=dict(
        loss_fcd=dict(
            type='DKEDFeatureCorrelationLoss',
            in_channels=1024,
            teacher_embedding='frozen',
            loss_weight=1.0),
        # FPN: LO-Det 256/512/1024 ch -> GGHL 128/256/512 ch
        loss_drfd=dict(
            type='DKEDFeatureResponseLoss',
            in_channels=(128, 256, 512),
            student_channels=(256, 512, 1024),
            teacher_ddc='frozen',
            loss_weight=1.0),
        loss_pred=dict(
            type='DKEDPredictionLoss',
            strides=(8, 16, 32),
            delta=0.0,
            lam=0.5,
            combine='reweight',
            loss_weight=1.0)),
    loss_mappings=dict(
        loss_fcd=dict(
            preds_S=dict(source='s_backbone', index=-1,
                         connector='fcd_adapter'),
            preds_T='t_backbone[-1]'),
        loss_drfd=dict(
            student_feats='s_fpn',
            teacher_feats='t_fpn',
            batch_targets='s_targets'),
        loss_pred=dict(
            head_outs_S='s_head',
            head_outs_T='t_head',
            batch_targets='s_targets')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
# anneals the attention temperature of the DDCs inside loss_drfd
custom_hooks = [dict(type='DDCTemperatureHook')]
