"""Draw the ground truth of a dataset, after its pipeline, into PNG files.

Example::

    python tools/analysis_tools/browse_dataset.py CONFIG \
        --output-dir work_dirs/browse --split train --num 20

Horizontal, rotated and quadrilateral boxes are drawn as polygons with their
class names, in the class's palette colour; ignored (difficult) objects are
drawn grey. What you see is what the model gets: the pipeline's resizing,
flips and box-type conversions are applied.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.config import DictAction

from mmrskd.datasets.builder import build_dataset_from_config
from mmrskd.structures import as_box_array
from mmrskd.utils import MMRSKDError
from mmrskd.utils.cli import exit_on_user_error

IGNORED_COLOR = (128, 128, 128)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the ground truth of a dataset into PNG files')
    parser.add_argument('config', help='config with <split>_dataloader')
    parser.add_argument('--output-dir', required=True,
                        help='folder for the PNG files')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which <split>_dataloader.dataset to browse')
    parser.add_argument('--num', type=int, default=10,
                        help='number of images to draw (from the first)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    return parser.parse_args(argv)


def _numpy(values):
    if hasattr(values, 'detach'):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def image_and_objects(item):
    """The drawn image and its objects from one pipeline output.

    Args:
        item (dict): ``PackDetInputs`` output (``inputs`` (C, H, W),
            ``data_samples``) or an unpacked results dict (``img``,
            ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``).

    Returns:
        tuple: (H, W, 3) uint8 BGR image, (N, 8) polygons, (N,) labels,
        (N,) bool ignore flags, and the image path (or None).
    """
    if 'data_samples' in item:
        sample = item['data_samples']
        img = _numpy(item['inputs']).transpose(1, 2, 0)
        parts = [(sample.gt_instances, False)]
        if 'ignored_instances' in sample:
            parts.append((sample.ignored_instances, True))
        boxes, labels, ignored = [], [], []
        for inst, flag in parts:
            if 'bboxes' not in inst:
                continue
            boxes.append(as_box_array(inst.bboxes, 'qbox', 'gt bboxes'))
            labels.append(_numpy(inst.labels).astype(np.int64))
            ignored.append(np.full(len(labels[-1]), flag))
        img_path = sample.metainfo.get('img_path')
    else:
        img = _numpy(item['img'])
        boxes = [as_box_array(item.get('gt_bboxes', np.zeros((0, 4))), 'qbox',
                              'gt_bboxes')]
        labels = [_numpy(item.get('gt_bboxes_labels', [])).astype(np.int64)]
        ignored = [
            _numpy(item.get('gt_ignore_flags',
                            np.zeros(len(labels[0]), bool))).astype(bool)
        ]
        img_path = item.get('img_path')
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    cat = (lambda parts, shape: np.concatenate(parts)
           if parts else np.zeros(shape))
    return (img, cat(boxes, (0, 8)), cat(labels, (0, )).astype(np.int64),
            cat(ignored, (0, )).astype(bool), img_path)


def draw_objects(img, polygons, labels, ignored, classes, palette=None):
    """Draw polygons and class names onto a copy of ``img``.

    Args:
        img (np.ndarray): (H, W, 3) BGR image.
        polygons (np.ndarray): (N, 8) polygons.
        labels (np.ndarray): (N,) class indices.
        ignored (np.ndarray): (N,) bool, drawn grey.
        classes (Sequence[str]): class names.
        palette (Sequence[tuple], optional): RGB colour per class.

    Returns:
        np.ndarray: the drawn image.
    """
    canvas = img.copy()
    scale = max(canvas.shape[:2]) / 1000
    thickness = max(1, int(round(2 * scale)))
    for poly, label, ign in zip(polygons, labels, ignored):
        if ign:
            color = IGNORED_COLOR
        elif palette:
            color = tuple(int(c) for c in palette[label % len(palette)][::-1])
        else:
            color = (0, 255, 0)
        points = np.round(poly.reshape(4, 2)).astype(np.int32)
        cv2.polylines(canvas, [points], True, color, thickness, cv2.LINE_AA)
        name = classes[label] if 0 <= label < len(classes) else str(label)
        x, y = points[:, 0].min(), max(points[:, 1].min() - 3, 10)
        cv2.putText(canvas, name, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, 0.5 * scale), color, thickness, cv2.LINE_AA)
    return canvas


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.num < 1:
        raise MMRSKDError(f'--num {args.num} must be at least 1')
    dataset = build_dataset_from_config(args.config, args.split,
                                        args.cfg_options)
    classes = dataset.metainfo.get('classes', ())
    palette = dataset.metainfo.get('palette')
    os.makedirs(args.output_dir, exist_ok=True)
    count = min(args.num, len(dataset))
    for index in range(count):
        img, polygons, labels, ignored, img_path = image_and_objects(
            dataset[index])
        canvas = draw_objects(img, polygons, labels, ignored, classes,
                              palette)
        stem = osp.splitext(osp.basename(img_path))[0] if img_path else 'img'
        cv2.imwrite(
            osp.join(args.output_dir, f'{index:05d}_{stem}.png'), canvas)
    print(f'wrote {count} images to {args.output_dir}')


if __name__ == '__main__':
    main()
