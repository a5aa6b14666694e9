"""Write the annotations of a dataset from an mmrskd config as COCO json.

Example::

    python tools/dataset_converters/to_coco.py \
        configs/_base_/datasets/dota.py --split val --out dota_val.json

The dataset is built through the registry exactly as the config describes it
(class subset, ``diff_thr``, wrappers), without its pipeline. Each object
becomes a COCO annotation with its enclosing horizontal ``bbox``
``[x, y, w, h]``; rotated and quadrilateral objects also get their polygon as
``segmentation`` and its area as ``area``. ``iscrowd`` carries
``ignore_flag``, which is how mmdet's ``CocoDataset`` reads ignored objects
back. Categories are ``dataset.metainfo['classes']`` with ids from 1.
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.config import DictAction
from mmengine.fileio import dump

from mmrskd.datasets.builder import build_dataset_from_config
from mmrskd.datasets.utils import read_image_size
from mmrskd.structures import as_box_array
from mmrskd.utils import MMRSKDError
from mmrskd.utils.cli import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the annotations of a dataset to COCO json')
    parser.add_argument('config', help='config with <split>_dataloader')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which <split>_dataloader.dataset to convert')
    parser.add_argument('--out', required=True, help='output .json file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'train_dataloader.dataset.data_root=data/DOTA/')
    return parser.parse_args(argv)


def polygon_area(poly):
    """Shoelace area of an (8,) polygon."""
    x, y = poly[0::2], poly[1::2]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def dataset_to_coco(dataset):
    """COCO dict of a dataset's raw annotations (``get_data_info``).

    Args:
        dataset: an mmengine ``BaseDataset`` (or wrapper) whose entries have
            ``img_path`` and ``instances`` with ``bbox`` (4: x1 y1 x2 y2;
            5: cx cy w h angle; 8: polygon), ``bbox_label``, ``ignore_flag``.

    Returns:
        dict: ``images``, ``annotations``, ``categories``.
    """
    classes = dataset.metainfo.get('classes')
    if not classes:
        raise MMRSKDError(f'{type(dataset).__name__}.metainfo has no '
                          "'classes'; set metainfo=dict(classes=(...))")
    img_root = getattr(dataset, 'data_prefix', {}).get('img_path', '')
    images, annotations = [], []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        img_path = info['img_path']
        if 'width' in info and 'height' in info:
            width, height = info['width'], info['height']
        else:
            width, height = read_image_size(img_path)
        file_name = (osp.relpath(img_path, img_root)
                     if img_root else osp.basename(img_path))
        images.append(
            dict(id=index + 1, file_name=file_name, width=int(width),
                 height=int(height)))
        for inst in info.get('instances', []):
            bbox = np.asarray(inst['bbox'], dtype=np.float64)
            x1, y1, x2, y2 = as_box_array(bbox[None], 'hbox',
                                          f'{img_path}: bbox')[0]
            ann = dict(
                id=len(annotations) + 1,
                image_id=index + 1,
                category_id=int(inst['bbox_label']) + 1,
                bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                area=float((x2 - x1) * (y2 - y1)),
                iscrowd=int(inst.get('ignore_flag', 0)))
            if len(bbox) != 4:
                poly = as_box_array(bbox[None], 'qbox', f'{img_path}: bbox')[0]
                ann['segmentation'] = [[float(v) for v in poly]]
                ann['area'] = float(polygon_area(poly))
            annotations.append(ann)
    categories = [
        dict(id=label + 1, name=name) for label, name in enumerate(classes)
    ]
    return dict(images=images, annotations=annotations, categories=categories)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    coco = dataset_to_coco(build_dataset_from_config(
        args.config, args.split, args.cfg_options))
    dump(coco, args.out)
    print(f'wrote {len(coco["images"])} images and '
          f'{len(coco["annotations"])} objects of '
          f'{len(coco["categories"])} classes to {args.out}')


if __name__ == '__main__':
    main()
