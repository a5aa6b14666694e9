# RTMDet-s on DIOR, 800 px, 100 epochs: the student of the CSAKD RTMDet
# pair. The data and augmentation are those of the YOLOv8 DIOR configs
# (Mosaic + RandomAffine, switched off for the last 10 epochs), so both
# CSAKD pairs see the same data; model and optimiser are RTMDet's (AdamW,
# weight decay 0.05, none on norms/biases, EMA 2e-4, cosine decay over the
# second half), lr 1e-3 = RTMDet's 4e-3 at batch 256 scaled by
# sqrt(16 / 256). From scratch.
_base_ = ['../yolov8/yolov8_s_1xb16-100e_dior.py', './_base_/rtmdet_s.py']
model = dict(_delete_=True, **_base_.rtmdet_s_model)
max_epochs = 100
base_lr = 0.001
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=max_epochs // 2,
        end=max_epochs,
        T_max=max_epochs // 2,
        by_epoch=True,
        convert_to_iter_based=True)
]
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='mmdet.ExpMomentumEMA',
        momentum=0.0002,
        update_buffers=True,
        priority=49),
    dict(
        type='mmdet.YOLOXModeSwitchHook',
        num_last_epochs=_base_.close_mosaic_epochs - 1,
        skip_type_keys=('Mosaic', 'RandomAffine'),
        priority=48)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# mAP50 and mAP50:95, as the CSAKD configs report
val_evaluator = dict(iou_thrs='coco')
test_evaluator = val_evaluator
