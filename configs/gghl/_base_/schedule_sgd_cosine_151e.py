# GGHL's schedule: SGD (nesterov, momentum 0.9, weight decay 5e-4 on conv and
# linear weights only), lr 2e-4 with 5 warm-up epochs, cosine to 1e-6 at
# epoch 151; batch 18 on one GPU.
max_epochs = 151
warmup_epochs = 5

train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=2e-4, momentum=0.9, nesterov=True, weight_decay=5e-4),
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
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=warmup_epochs,
        end=max_epochs)
]
auto_scale_lr = dict(enable=False, base_batch_size=18)
