# The narrow GGHL teacher of the 15-class synthetic DOTA pair (the 5-class
# config otherwise).
_base_ = './gghl_cspdarknet-w0.25_fpn_12e_synthetic-dota.py'

data_root = 'data/synthetic/dota15/'
# metainfo None: DOTADataset's own 15 classes
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
test_dataloader = val_dataloader
model = dict(bbox_head=dict(num_classes=15))
