# LTD's released NWPU VHR-10 schedule (Molly6/LTD configs/all_gfl18-101.py):
# 50 epochs, SGD lr 0.001 (1 GPU x 8 images), linear warm-up over 500
# iterations from lr/80, x0.1 at epoch 40, gradient clipping at 35.
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=50, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 80, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=50, by_epoch=True, milestones=[40],
         gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
