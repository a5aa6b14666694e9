# The demo teacher: the student's architecture trained twice as long. A
# wider teacher trained from scratch on the same short CPU schedule ends up
# weaker than the student (R34-w32: 0.19 vs 0.41 mAP), which teaches nothing.
_base_ = './rotated-retinanet_r18-w16_12e_synthetic-dota.py'

train_cfg = dict(max_epochs=24, val_interval=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=24,
         eta_min=1e-5)
]
