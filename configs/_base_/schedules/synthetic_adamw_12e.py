# A short AdamW schedule that trains narrow detectors from scratch on the
# synthetic sets on a CPU (the demo, the CPU configs of the methods).
_base_ = '../default_runtime.py'

train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=12, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=12,
         eta_min=1e-5)
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=4, max_keep_ckpts=1),
    visualization=dict(type='mmdet.DetVisualizationHook', draw=False))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
