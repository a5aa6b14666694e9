"""Writers of the real on-disk formats of DOTA, DIOR, HRSC2016 and NWPU.

Each writer saves one image and its annotation per call and returns the
ground-truth record of what it wrote: numbers are parsed back from the
written text, so a loader must reproduce them exactly. A record is::

    dict(img_id=str, split=str, img_path=str, ann_path=str | None,
         width=int, height=int,
         instances=[dict(name=str, difficult=int,
                         rbox=[cx, cy, w, h, angle],  # drawn geometry
                         ...written boxes...)])

``rbox`` is the geometry as drawn (radians, x towards y, ``w`` along the
heading), before any rounding; the written boxes are listed per writer.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

import cv2
import numpy as np

from mmrskd.datasets.dior import DIORDataset
from mmrskd.datasets.dota import DOTADataset
from mmrskd.datasets.hrsc import HRSC_CLASS_NUMBERS, HRSC_CLASSES
from mmrskd.datasets.nwpu_vhr10 import (NWPU_CLASSES, SPLIT_NAMES,
                                        make_nwpu_split)
from mmrskd.datasets.synthetic.scene import SceneObject


def _written(value: float, fmt: str) -> float:
    """The float a loader reads back from ``format(value, fmt)``."""
    return float(format(value, fmt))


def _hbox(obj: SceneObject, width: int, height: int) -> List[int]:
    """Integer horizontal box enclosing the object's oriented box."""
    corners = obj.corners()
    x1, y1 = np.floor(corners.min(axis=0)).astype(int)
    x2, y2 = np.ceil(corners.max(axis=0)).astype(int)
    return [max(int(x1), 0), max(int(y1), 0), min(int(x2), width - 1),
            min(int(y2), height - 1)]


def _save(path: str, image: np.ndarray, params: Sequence[int] = ()) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, image, list(params)):
        raise OSError(f'cannot write {path}')


def _write_text(path: str, text: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)


def _write_id_lists(path_pattern: str, ids: Dict[str, List[str]]) -> None:
    for split, split_ids in ids.items():
        _write_text(path_pattern.format(split),
                    ''.join(f'{i}\n' for i in split_ids))


class FormatWriter:
    """Base of the four writers.

    Attributes:
        vocabulary (tuple[str]): every class name of the dataset.
        default_classes (tuple[str]): a small, visually distinct subset.
        splits (tuple): ``(split name, fraction)`` in on-disk id order;
            empty when the writer splits the images itself.
        sized_splits (tuple[str]): the splits such a writer can size as
            asked (``split_sizes`` of :meth:`finish`).
        aspect (float): image height / width.
        default_size (int): image width when ``img_size`` is not given.
        max_objects (int): objects per image at most.
        outputs (tuple[str]): what :meth:`write` creates under ``out_dir``
            (removed first when overwriting).
    """
    vocabulary: Tuple[str, ...] = ()
    default_classes: Tuple[str, ...] = ()
    splits: Tuple[Tuple[str, float], ...] = ()
    sized_splits: Tuple[str, ...] = ()
    aspect = 1.0
    default_size = 256
    max_objects = 8
    outputs: Tuple[str, ...] = ()

    def write(self, out_dir: str, index: int, split: str, image: np.ndarray,
              objects: List[SceneObject],
              rng: np.random.Generator) -> dict:
        """Save image ``index`` and its annotation; return its record."""
        raise NotImplementedError

    def finish(self, out_dir: str, records: List[dict],
               split_sizes: Optional[Mapping[str, int]] = None) -> None:
        """Write the split files once every image is saved (with
        ``split_sizes``, a writer of ``sized_splits`` makes them that big).
        """


class DOTAWriter(FormatWriter):
    """``{train,val}/images/P0000.png`` and ``{train,val}/labelTxt/
    P0000.txt``: ``imagesource:``/``gsd:`` headers, then ``x1 y1 ... x4 y4
    class difficult`` with one decimal, vertices clockwise on screen.
    Record boxes: ``qbox`` (8 floats as written)."""
    vocabulary = DOTADataset.METAINFO['classes']
    default_classes = ('plane', 'ship', 'storage-tank', 'tennis-court',
                       'small-vehicle')
    splits = (('train', 0.8), ('val', 0.2))
    outputs = ('train', 'val')

    def write(self, out_dir, index, split, image, objects, rng):
        img_id = f'P{index:04d}'
        img_path = osp.join(out_dir, split, 'images', f'{img_id}.png')
        ann_path = osp.join(out_dir, split, 'labelTxt', f'{img_id}.txt')
        _save(img_path, image)
        gsd = _written(rng.uniform(0.1, 0.6), '.12f')
        lines = ['imagesource:GoogleEarth', f'gsd:{gsd:.12f}']
        instances = []
        for obj in objects:
            qbox = [_written(v, '.1f') for v in obj.corners().ravel()]
            lines.append(' '.join(f'{v:.1f}' for v in qbox) +
                         f' {obj.name} {obj.difficult}')
            instances.append(dict(name=obj.name, difficult=obj.difficult,
                                  rbox=obj.rbox, qbox=qbox))
        _write_text(ann_path, '\n'.join(lines) + '\n')
        height, width = image.shape[:2]
        return dict(img_id=img_id, split=split, img_path=img_path,
                    ann_path=ann_path, width=width, height=height, gsd=gsd,
                    instances=instances)


class DIORWriter(FormatWriter):
    """``JPEGImages-{trainval,test}/00001.jpg``, one XML per image in both
    ``Annotations/Horizontal Bounding Boxes`` (integer ``<bndbox>``) and
    ``Annotations/Oriented Bounding Boxes`` (integer ``<robndbox>`` corners
    left-top, right-top, right-bottom, left-bottom, and ``<angle>`` in whole
    degrees in [0, 180)), ``ImageSets/Main/{train,val,test}.txt``.
    Record boxes: ``hbox`` (4 ints), ``qbox`` (8 ints), ``angle``."""
    vocabulary = DIORDataset.METAINFO['classes']
    default_classes = ('airplane', 'ship', 'storagetank', 'tenniscourt',
                       'vehicle')
    splits = (('train', 0.5), ('val', 0.2), ('test', 0.3))
    outputs = ('JPEGImages-trainval', 'JPEGImages-test', 'Annotations',
               'ImageSets')
    HBB_DIR = 'Annotations/Horizontal Bounding Boxes'
    OBB_DIR = 'Annotations/Oriented Bounding Boxes'

    def write(self, out_dir, index, split, image, objects, rng):
        img_id = f'{index + 1:05d}'
        img_dir = 'JPEGImages-test' if split == 'test' else \
            'JPEGImages-trainval'
        img_path = osp.join(out_dir, img_dir, f'{img_id}.jpg')
        _save(img_path, image, (cv2.IMWRITE_JPEG_QUALITY, 95))
        height, width = image.shape[:2]
        hbb_objects, obb_objects, instances = [], [], []
        for obj in objects:
            hbox = _hbox(obj, width, height)
            qbox = [int(round(v)) for v in obj.corners().ravel()]
            angle = int(round(math.degrees(obj.angle))) % 180
            common = (f'<name>{escape(obj.name)}</name><pose>Unspecified'
                      '</pose><truncated>0</truncated>'
                      f'<difficult>{obj.difficult}</difficult>')
            hbb_objects.append(
                f'<object>{common}<bndbox><xmin>{hbox[0]}</xmin><ymin>'
                f'{hbox[1]}</ymin><xmax>{hbox[2]}</xmax><ymax>{hbox[3]}'
                '</ymax></bndbox></object>')
            corners = ''.join(
                f'<{tag}>{value}</{tag}>'
                for tag, value in zip(self._corner_tags(), qbox))
            obb_objects.append(
                f'<object><type>robndbox</type>{common}<robndbox>{corners}'
                f'</robndbox><angle>{angle}</angle></object>')
            instances.append(dict(name=obj.name, difficult=obj.difficult,
                                  rbox=obj.rbox, hbox=hbox, qbox=qbox,
                                  angle=angle))
        ann_path = osp.join(out_dir, self.HBB_DIR, f'{img_id}.xml')
        for directory, items in ((self.HBB_DIR, hbb_objects),
                                 (self.OBB_DIR, obb_objects)):
            _write_text(
                osp.join(out_dir, directory, f'{img_id}.xml'),
                self._xml(img_dir, img_id, width, height, items))
        return dict(img_id=img_id, split=split, img_path=img_path,
                    ann_path=ann_path, width=width, height=height,
                    instances=instances)

    @staticmethod
    def _corner_tags():
        return [f'{axis}_{corner}' for corner in ('left_top', 'right_top',
                                                  'right_bottom',
                                                  'left_bottom')
                for axis in 'xy']

    @staticmethod
    def _xml(img_dir, img_id, width, height, objects):
        body = '\n    '.join(objects)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<annotation>\n'
                f'    <folder>{img_dir}</folder>\n'
                f'    <filename>{img_id}.jpg</filename>\n'
                '    <source><database>Unknown</database></source>\n'
                f'    <size><width>{width}</width><height>{height}</height>'
                '<depth>3</depth></size>\n    <segmented>0</segmented>\n'
                f'    {body}\n</annotation>\n')

    def finish(self, out_dir, records, split_sizes=None):
        ids = {name: [r['img_id'] for r in records if r['split'] == name]
               for name, _ in self.splits}
        _write_id_lists(osp.join(out_dir, 'ImageSets', 'Main', '{}.txt'), ids)


class HRSCWriter(FormatWriter):
    """``FullDataSet/AllImages/100000001.bmp`` and ``FullDataSet/
    Annotations/100000001.xml`` (``Img_SizeWidth`` != ``Img_SizeHeight``,
    ``mbox_*`` with 4 decimals, ``mbox_ang`` in radians in [-pi/2, pi/2)
    with 6 decimals, ``header_x/y`` at the bow), ``ImageSets/{train,val,
    trainval,test}.txt``. Record boxes: ``hrsc_rbox`` (5 floats as
    written), ``hbox`` (4 ints), ``class_id``, ``header``."""
    vocabulary = HRSC_CLASSES
    default_classes = ('aircraft carrier', 'warcraft', 'merchant ship')
    splits = (('train', 0.5), ('val', 0.2), ('test', 0.3))
    aspect = 0.7
    default_size = 320
    max_objects = 4
    outputs = ('FullDataSet', 'ImageSets')
    CLASS_IDS = {name: f'1{"0" * 6}{number}'
                 for name, number in zip(HRSC_CLASSES, HRSC_CLASS_NUMBERS)}

    def write(self, out_dir, index, split, image, objects, rng):
        img_id = f'{100000001 + index}'
        img_path = osp.join(out_dir, 'FullDataSet', 'AllImages',
                            f'{img_id}.bmp')
        ann_path = osp.join(out_dir, 'FullDataSet', 'Annotations',
                            f'{img_id}.xml')
        _save(img_path, image)
        height, width = image.shape[:2]
        items, instances = [], []
        for number, obj in enumerate(objects):
            # mbox_ang in [-pi/2, pi/2): the same box, turned half a turn.
            angle = (obj.angle + math.pi / 2) % math.pi - math.pi / 2
            rbox = [_written(v, '.4f') for v in (obj.cx, obj.cy, obj.w, obj.h)]
            rbox.append(_written(angle, '.6f'))
            hbox = _hbox(obj, width, height)
            header = [int(round(v)) for v in obj.heading_point()]
            class_id = self.CLASS_IDS[obj.name]
            items.append(
                '    <HRSC_Object>\n'
                f'      <Object_ID>{100000001 + number}</Object_ID>\n'
                f'      <Class_ID>{class_id}</Class_ID>\n'
                '      <truncated>0</truncated>\n'
                f'      <difficult>{obj.difficult}</difficult>\n' + ''.join(
                    f'      <{tag}>{value}</{tag}>\n' for tag, value in zip(
                        ('box_xmin', 'box_ymin', 'box_xmax', 'box_ymax'),
                        hbox)) + ''.join(
                    f'      <{tag}>{value:{fmt}}</{tag}>\n'
                    for tag, value, fmt in zip(
                        ('mbox_cx', 'mbox_cy', 'mbox_w', 'mbox_h',
                         'mbox_ang'), rbox, ('.4f',) * 4 + ('.6f',))) +
                f'      <header_x>{header[0]}</header_x>\n'
                f'      <header_y>{header[1]}</header_y>\n'
                '    </HRSC_Object>\n')
            instances.append(dict(name=obj.name, difficult=obj.difficult,
                                  rbox=obj.rbox, hrsc_rbox=rbox, hbox=hbox,
                                  class_id=class_id, header=header))
        _write_text(ann_path, (
            f'<HRSC_Image>\n  <Img_ID>{img_id}</Img_ID>\n'
            f'  <Img_FileName>{img_id}</Img_FileName>\n'
            '  <Img_FileFmt>bmp</Img_FileFmt>\n'
            f'  <Img_SizeWidth>{width}</Img_SizeWidth>\n'
            f'  <Img_SizeHeight>{height}</Img_SizeHeight>\n'
            '  <Img_SizeDepth>3</Img_SizeDepth>\n'
            f'  <Annotated>1</Annotated>\n  <HRSC_Objects>\n'
            f'{"".join(items)}  </HRSC_Objects>\n</HRSC_Image>\n'))
        return dict(img_id=img_id, split=split, img_path=img_path,
                    ann_path=ann_path, width=width, height=height,
                    instances=instances)

    def finish(self, out_dir, records, split_sizes=None):
        ids = {name: [r['img_id'] for r in records if r['split'] == name]
               for name in ('train', 'val', 'test')}
        ids['trainval'] = ids['train'] + ids['val']
        _write_id_lists(osp.join(out_dir, 'ImageSets', '{}.txt'), ids)


class NWPUWriter(FormatWriter):
    """``positive image set/001.jpg`` with ``ground truth/001.txt`` lines
    ``( 68,316),(170,411),1 `` (3-wide padding, trailing space), background
    images in ``negative image set/``, and the split file
    ``nwpu_vhr10_split.json`` made by
    :func:`~mmrskd.datasets.nwpu_vhr10.make_nwpu_split`. Record boxes:
    ``hbox`` (4 ints), ``class_number`` (1..10)."""
    vocabulary = NWPU_CLASSES
    default_classes = ('airplane', 'ship', 'storage tank', 'tennis court',
                       'vehicle')
    aspect = 0.8
    outputs = ('positive image set', 'negative image set', 'ground truth',
               'nwpu_vhr10_split.json')
    sized_splits = SPLIT_NAMES
    SPLIT_FILE = 'nwpu_vhr10_split.json'

    def __init__(self):
        self.counts = {'positive': 0, 'negative': 0}

    def write(self, out_dir, index, split, image, objects, rng):
        image_set = 'positive' if objects else 'negative'
        self.counts[image_set] += 1
        img_id = f'{self.counts[image_set]:03d}'
        img_path = osp.join(out_dir, f'{image_set} image set',
                            f'{img_id}.jpg')
        _save(img_path, image, (cv2.IMWRITE_JPEG_QUALITY, 95))
        height, width = image.shape[:2]
        ann_path, lines, instances = None, [], []
        for obj in objects:
            hbox = _hbox(obj, width, height)
            number = NWPU_CLASSES.index(obj.name) + 1
            lines.append(f'({hbox[0]:3d},{hbox[1]:3d}),'
                         f'({hbox[2]:3d},{hbox[3]:3d}),{number} ')
            instances.append(dict(name=obj.name, difficult=0, rbox=obj.rbox,
                                  hbox=hbox, class_number=number))
        if objects:
            ann_path = osp.join(out_dir, 'ground truth', f'{img_id}.txt')
            _write_text(ann_path, '\n'.join(lines) + '\n')
        return dict(img_id=f'{image_set}_{img_id}', split=None,
                    img_path=img_path, ann_path=ann_path, width=width,
                    height=height, instances=instances)

    def finish(self, out_dir, records, split_sizes=None):
        ids = {s: [r['img_id'].split('_', 1)[1] for r in records
                   if r['img_id'].startswith(s)]
               for s in ('positive', 'negative')}
        split = make_nwpu_split(
            ids['positive'], ids['negative'],
            sizes=None if not split_sizes else tuple(
                split_sizes[name] for name in SPLIT_NAMES))
        lookup = {f'{image_set}_{i}': name
                  for name, sets in split.items()
                  for image_set, split_ids in sets.items()
                  for i in split_ids}
        for record in records:
            record['split'] = lookup[record['img_id']]
        _write_text(osp.join(out_dir, self.SPLIT_FILE),
                    json.dumps(split, indent=1) + '\n')


WRITERS = {
    'dota': DOTAWriter,
    'dior': DIORWriter,
    'hrsc': HRSCWriter,
    'nwpu': NWPUWriter,
}
