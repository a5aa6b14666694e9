_base_ = './schedule_1x.py'

# 36 epochs, step decay at 27 and 33 (prolonged distillation)
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True,
         milestones=[27, 33], gamma=0.1)
]
