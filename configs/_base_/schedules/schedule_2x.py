_base_ = './schedule_1x.py'

# 24 epochs, step decay at 16 and 22
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]
