# GFL R18-FPN on NWPU VHR-10: the student baseline of LTD's released setting
# (Molly6/LTD configs/all_gfl18-101.py): FPN 256 channels, ATSS top-9,
# QFL/DFL/GIoU, (1000, 600) keep-ratio resize, horizontal flip 0.5,
# 1 GPU x 8 images, SGD lr 0.001 for 50 epochs. The NWPU split is mmrskd's
# (configs/_base_/datasets/nwpu_vhr10.py), not the authors' unpublished one.
_base_ = [
    './_base_/gfl_r50_fpn.py', './_base_/nwpu_vhr10_1000x600.py',
    './_base_/schedule_sgd_step_50e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    bbox_head=dict(num_classes=10))
