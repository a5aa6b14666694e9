"""A tiny synthetic DOTA dataset and tiny distillation configs for
end-to-end runs of tools/train.py and tools/test.py."""
import os.path as osp

import pytest

from mmrskd.datasets.synthetic import generate
from mmrskd.testing import tiny_fcos_cfg, tiny_rotated_retinanet_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('plane', 'ship', 'storage-tank', 'tennis-court', 'small-vehicle')


@pytest.fixture(scope='session')
def dota_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_dota')
    generate('dota', str(root), 10, seed=1, img_size=128)  # 8 train, 2 val
    return str(root)


def data_settings(data_root, flip=True, batch_size=4, box_type='rbox',
                  filter_empty_gt=True, ann_subdir='labelTxt'):
    """Dataloaders of the synthetic DOTA base config, pointed at
    ``data_root`` (labels in ``<split>/<ann_subdir>/``), at 128 px, training
    boxes as ``box_type``."""
    return f"""
_base_ = ['{REPO}/configs/_base_/datasets/synthetic_dota.py',
          '{REPO}/configs/_base_/default_runtime.py']
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='{box_type}')),
    dict(type='mmdet.Resize', scale=(128, 128), keep_ratio=True),
    {"dict(type='mmdet.RandomFlip', prob=0.5)," if flip else ''}
    dict(type='mmdet.PackDetInputs')]
train_dataloader = dict(batch_size={batch_size}, dataset=dict(
    data_root='{data_root}/', ann_file='train/{ann_subdir}/',
    pipeline=train_pipeline,
    filter_cfg=dict(filter_empty_gt={filter_empty_gt})))
val_dataloader = dict(batch_size=2, dataset=dict(
    data_root='{data_root}/', ann_file='val/{ann_subdir}/'))
test_dataloader = val_dataloader
# in-process metric: mmrotate's DOTAMetric spawns 4 workers per evaluation
val_evaluator = dict(_delete_=True, type='RSDetMetric', box_type='rbox',
                     iou_thrs=0.5)
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     visualization=dict(type='mmdet.DetVisualizationHook'))
randomness = dict(seed=0)
"""


def tiny_distill_config(tmp_path, data_root, name='distill.py', **kwargs):
    """Write a distiller config (tiny Rotated RetinaNet pair, PKD on the FPN
    through a connector) and return its path."""
    student = tiny_rotated_retinanet_cfg(base_channels=8, fpn_channels=16,
                                         num_classes=len(CLASSES)).to_dict()
    teacher = tiny_rotated_retinanet_cfg(base_channels=16, fpn_channels=32,
                                         num_classes=len(CLASSES)).to_dict()
    text = data_settings(data_root, **kwargs) + f"""
model = dict(
    type='SingleTeacherDistiller',
    student={student!r},
    teacher={teacher!r},
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(adapt=dict(type='MultiLevelConnector', num_levels=5,
        connector=dict(type='ConvBNConnector', in_channels=16,
                       out_channels=32))),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=1.0)),
    loss_mappings=dict(loss_pkd=dict(
        preds_S=dict(source='s_fpn', connector='adapt'), preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
"""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def tiny_fcos_gn_distill_config(tmp_path, data_root, batch_size):
    """FCOS pair with GroupNorm everywhere and FitNet on the FPN: no batch
    statistics, so one process of batch 4 and two of batch 2 agree."""
    gn = dict(type='GN', num_groups=4, requires_grad=True)
    models = []
    for width in (8, 16):
        cfg = tiny_fcos_cfg(base_channels=width, fpn_channels=16,
                            num_classes=len(CLASSES)).to_dict()
        cfg['backbone']['norm_cfg'] = gn
        cfg['bbox_head']['norm_cfg'] = gn
        cfg['data_preprocessor']['boxtype2tensor'] = True
        models.append(cfg)
    # all 8 training images (one without objects), so both runs see the
    # same 8 samples: the sampler pads uneven splits across processes
    text = data_settings(data_root, flip=False, batch_size=batch_size,
                         box_type='hbox', filter_empty_gt=False) + f"""
model = dict(
    type='SingleTeacherDistiller',
    student={models[0]!r},
    teacher={models[1]!r},
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    distill_losses=dict(loss_fitnet=dict(type='FitNetLoss', normalize='level')),
    loss_mappings=dict(loss_fitnet=dict(preds_S='s_fpn', preds_T='t_fpn')))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=100)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-3, momentum=0.9))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
"""
    path = tmp_path / f'fcos_gn_bs{batch_size}.py'
    path.write_text(text)
    return str(path)
