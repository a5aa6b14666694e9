# YOLOv8's optimisation (ultralytics defaults, as in mmyolo): SGD lr 0.01,
# momentum 0.937 (warmed up from 0.8), nesterov, weight decay 5e-4 on conv
# weights only, 3 warm-up epochs, lr decaying linearly to 1% at the last
# epoch, gradient norm clipped at 10, EMA of the weights (momentum 1e-4,
# ramped in over ~2000 iterations). 100 epochs = the ultralytics default.
# The head multiplies its losses by the global batch size (as YOLOv8 does),
# so do not rescale the lr with the batch size.
max_epochs = 100
warmup_epochs = 3
base_lr = 0.01
base_momentum = 0.937

train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    clip_grad=dict(max_norm=10.0),
    optimizer=dict(
        type='SGD',
        lr=base_lr,
        momentum=base_momentum,
        nesterov=True,
        weight_decay=5e-4),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=warmup_epochs),
    dict(
        type='LinearMomentum',
        start_factor=0.8 / base_momentum,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=warmup_epochs),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.01,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=max_epochs)
]
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='mmdet.ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        strict_load=False,
        priority=49)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
