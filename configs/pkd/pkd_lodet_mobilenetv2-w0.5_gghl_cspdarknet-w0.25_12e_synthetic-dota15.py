# PKD on DKED's 15-class synthetic DOTA pair (the 5-class config otherwise).
_base_ = ('./pkd_lodet_mobilenetv2-w0.5_gghl_cspdarknet-w0.25_12e_'
          'synthetic-dota.py')

data_root = 'data/synthetic/dota15/'
# metainfo None: DOTADataset's own 15 classes
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
test_dataloader = val_dataloader
model = dict(
    student='mmrskd::dked/'
    'lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota15.py',
    teacher='mmrskd::dked/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota15.py',
    teacher_ckpt='work_dirs/gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota15/'
    'epoch_12.pth')
