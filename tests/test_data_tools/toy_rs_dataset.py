"""A tiny hand-built dataset for the data-tool tests."""
import os.path as osp

import cv2
import numpy as np
from mmengine.dataset import BaseDataset

from mmrskd.registry import DATASETS

CLASSES = ('plane', 'ship')
BACKGROUND = 60
# per image: (bbox, label, ignore_flag); 8 values = polygon, 4 = x1 y1 x2 y2
OBJECTS = {
    'qbox': [
        [([20, 30, 80, 30, 80, 60, 20, 60], 0, 0),
         ([100, 100, 140, 120, 130, 140, 90, 120], 1, 1)],
        [([10, 10, 50, 10, 50, 40, 10, 40], 1, 0)],
    ],
    'hbox': [
        [([20, 30, 80, 60], 0, 0), ([90, 100, 140, 140], 1, 1)],
        [([10, 10, 50, 40], 1, 0)],
    ],
}


@DATASETS.register_module(force=True)
class ToyRSDataset(BaseDataset):
    """Two 160 x 200 grey images with the objects of ``OBJECTS[kind]``,
    written to ``data_root`` on first use."""

    METAINFO = dict(classes=CLASSES, palette=[(255, 0, 0), (0, 0, 255)])

    def __init__(self, kind='qbox', **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def load_data_list(self):
        data_list = []
        for i, objects in enumerate(OBJECTS[self.kind]):
            img_path = osp.join(self.data_root, f'img{i}.png')
            if not osp.exists(img_path):
                cv2.imwrite(img_path,
                            np.full((160, 200, 3), BACKGROUND, np.uint8))
            data_list.append(
                dict(img_path=img_path, img_id=f'img{i}', width=200,
                     height=160,
                     instances=[
                         dict(bbox=[float(v) for v in bbox],
                              bbox_label=label, ignore_flag=ignore)
                         for bbox, label, ignore in objects
                     ]))
        return data_list


def write_config(folder, kind, pipeline):
    """A config file whose train and val dataloaders use the toy dataset."""
    path = osp.join(folder, f'toy_{kind}.py')
    dataset = dict(type='ToyRSDataset', kind=kind, data_root=str(folder),
                   pipeline=pipeline)
    with open(path, 'w') as f:
        f.write("default_scope = 'mmrskd'\n"
                f'train_dataloader = dict(dataset={dataset!r})\n'
                f'val_dataloader = dict(dataset={dataset!r})\n')
    return path
