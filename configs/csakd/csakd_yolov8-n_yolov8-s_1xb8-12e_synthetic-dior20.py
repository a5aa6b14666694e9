# CSAKD on the 20-class synthetic DIOR pair (the 5-class config otherwise).
_base_ = './csakd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py'

data_root = 'data/synthetic/dior20/'
# metainfo None: DIORDataset's own 20 classes
train_dataloader = dict(dataset=dict(dataset=dict(datasets=[
    dict(dataset, data_root=data_root, metainfo=None)
    for dataset in _base_.train_dataloader.dataset.dataset.datasets
])))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
test_dataloader = val_dataloader
model = dict(
    student='mmrskd::yolov8/yolov8_n_1xb8-12e_synthetic-dior20.py',
    teacher='mmrskd::csakd/yolov8_s_1xb8-12e_synthetic-dior20.py',
    teacher_ckpt='work_dirs/yolov8_s_1xb8-12e_synthetic-dior20/epoch_12.pth')
