"""DIOR (horizontal boxes) and the XML parser shared with DIOR-R.

Layout (Li et al., ISPRS 2020; DIOR-R: Cheng et al., TGRS 2022)::

    JPEGImages-trainval/00001.jpg ... 11725.jpg
    JPEGImages-test/11726.jpg ... 23463.jpg
    Annotations/Horizontal Bounding Boxes/00001.xml   <- VOC <bndbox>
    Annotations/Oriented Bounding Boxes/00001.xml     <- <robndbox>
    ImageSets/Main/{train,val,test}.txt               <- 5-digit ids

* Class names are matched case-insensitively to DIOR's own list (the XML
  files spell ``Expressway-Service-area``); labels follow DIOR's order, as
  published DIOR models do (mmrotate reorders the two expressway classes).
* Coordinates are used as written: unlike mmdet's VOC loader, no 1 is
  subtracted, so the horizontal and oriented annotations of an object stay
  consistent with each other.
* ``<difficult>`` greater than ``diff_thr`` sets ``ignore_flag=1``.
* Oriented boxes keep the XML vertex order left-top, right-top,
  right-bottom, left-bottom (clockwise on screen, y down) as an 8-value
  qbox; ``<angle>`` is not used, the vertices define the box.
"""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from mmrskd.datasets.base_rs_dataset import BaseRSDataset
from mmrskd.datasets.utils import (InvalidAnnotationError, check_on_invalid,
                                   log_warning, make_palette,
                                   parse_xml_with_lines, read_id_list,
                                   read_image_size, report_invalid,
                                   require_dir, require_file, xml_float,
                                   xml_text)
from mmrskd.registry import DATASETS

HBOX_TAGS = ('xmin', 'ymin', 'xmax', 'ymax')
QBOX_TAGS = ('x_left_top', 'y_left_top', 'x_right_top', 'y_right_top',
             'x_right_bottom', 'y_right_bottom', 'x_left_bottom',
             'y_left_bottom')


def parse_dior_xml(path: str,
                   box_type: str = 'hbox',
                   classes: Optional[Sequence[str]] = None,
                   on_invalid: str = 'raise') -> dict:
    """Read one DIOR (``'hbox'``) or DIOR-R (``'qbox'``) annotation file.

    Args:
        path (str): the ``.xml`` file.
        box_type (str): ``'hbox'`` reads ``<bndbox>``, ``'qbox'`` reads
            ``<robndbox>``.
        classes (Sequence[str], optional): the allowed class names, matched
            case-insensitively; names are returned as spelled here. None
            accepts any name as written.
        on_invalid (str): ``'raise'`` an error naming file and line at the
            first invalid object, or ``'skip'`` it with a warning.

    Returns:
        dict:

        - width, height (int | None): from ``<size>``; None when absent.
        - boxes (np.ndarray): (n, 4) ``x1 y1 x2 y2`` or (n, 8) ``x1 y1 ...
          x4 y4`` float32.
        - names (list[str]): n class names.
        - difficulties (np.ndarray): (n,) int64; 0 when absent.

    Raises:
        InvalidAnnotationError: the file is not well-formed XML, or an
            invalid object with ``on_invalid='raise'``.
    """
    check_on_invalid(on_invalid)
    if box_type not in ('hbox', 'qbox'):
        raise ValueError(
            f"box_type must be 'hbox' or 'qbox', not {box_type!r}")
    canonical = None if classes is None else {c.lower(): c for c in classes}
    root, lines = parse_xml_with_lines(path)
    width = height = None
    size = root.find('size')
    if size is not None and size.findtext('width', '').strip():
        width = int(xml_float(size, 'width', path, lines[size]))
        height = int(xml_float(size, 'height', path, lines[size]))

    boxes, names, difficulties = [], [], []
    for obj in root.findall('object'):
        try:
            box, name, difficulty = _parse_object(obj, box_type, canonical,
                                                  path, lines)
        except InvalidAnnotationError as err:
            report_invalid(str(err), on_invalid)
            continue
        boxes.append(box)
        names.append(name)
        difficulties.append(difficulty)
    box_dim = 4 if box_type == 'hbox' else 8
    return dict(width=width, height=height,
                boxes=np.array(boxes, dtype=np.float32).reshape(-1, box_dim),
                names=names,
                difficulties=np.array(difficulties, dtype=np.int64))


def _parse_object(obj, box_type, canonical, path, lines):
    """Parse one ``<object>``; raise on anything malformed."""
    line = lines[obj]
    raw_name = xml_text(obj, 'name', path, line)
    name = raw_name
    if canonical is not None:
        name = canonical.get(raw_name.lower())
        if name is None:
            raise InvalidAnnotationError(
                f'{path}:{lines[obj.find("name")]}: unknown class '
                f'{raw_name!r}; expected one of {tuple(canonical.values())}')
    difficulty = 0
    if obj.find('difficult') is not None:
        difficulty = int(xml_float(obj, 'difficult', path, line))
    tag, fields = (('bndbox', HBOX_TAGS) if box_type == 'hbox' else
                   ('robndbox', QBOX_TAGS))
    box_elem = obj.find(tag)
    if box_elem is None:
        raise InvalidAnnotationError(f'{path}:{line}: <object> has no <{tag}>')
    box = [xml_float(box_elem, f, path, lines[box_elem]) for f in fields]
    if box_type == 'hbox' and (box[2] <= box[0] or box[3] <= box[1]):
        raise InvalidAnnotationError(
            f'{path}:{lines[box_elem]}: <bndbox> has xmax <= xmin or '
            f'ymax <= ymin: {box}')
    return box, name, difficulty


@DATASETS.register_module()
class DIORDataset(BaseRSDataset):
    """DIOR with horizontal boxes (``bbox = [x1, y1, x2, y2]``), 20 classes
    in DIOR's order.

    Args:
        ann_file (str): split file with one 5-digit id per line, relative to
            ``data_root`` (``'ImageSets/Main/train.txt'``).
        data_prefix (dict): ``img_path``: ``'JPEGImages-trainval'`` for the
            train/val splits, ``'JPEGImages-test'`` for test.
        ann_subdir (str, optional): the XML directory relative to
            ``data_root``. Defaults to ``'Annotations/Horizontal Bounding
            Boxes'`` (``'.../Oriented Bounding Boxes'`` for DIOR-R).
        diff_thr (int): objects with ``difficult > diff_thr`` get
            ``ignore_flag=1``. Defaults to 0 (VOC semantics).
        img_suffix (str): image file extension. Defaults to ``'jpg'``.
        **kwargs: see :class:`BaseRSDataset` (``on_invalid``, ``metainfo``,
            ``filter_cfg``, ...).
    """

    METAINFO = {
        'classes':
        ('airplane', 'airport', 'baseballfield', 'basketballcourt', 'bridge',
         'chimney', 'dam', 'Expressway-Service-area',
         'Expressway-toll-station', 'golffield', 'groundtrackfield',
         'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
         'tenniscourt', 'trainstation', 'vehicle', 'windmill'),
        'palette': make_palette(20)
    }
    BOX_TYPE = 'hbox'
    DEFAULT_ANN_SUBDIR = 'Annotations/Horizontal Bounding Boxes'

    def __init__(self,
                 *args,
                 ann_subdir: Optional[str] = None,
                 diff_thr: int = 0,
                 img_suffix: str = 'jpg',
                 **kwargs) -> None:
        self.ann_subdir = ann_subdir or self.DEFAULT_ANN_SUBDIR
        self.diff_thr = diff_thr
        self.img_suffix = img_suffix
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the XML file of every id in the split file.

        Returns:
            list[dict]: one entry per id, in split-file order.
        """
        self.check_data_root()
        label_map = self.label_map()
        name = type(self).__name__
        img_ids = read_id_list(self.ann_file, f'{name}: ann_file (split file)')
        img_dir = self.data_prefix.get('img_path', '')
        require_dir(img_dir, f"{name}: data_prefix['img_path']")
        xml_dir = osp.join(self.data_root, self.ann_subdir)
        require_dir(xml_dir, f'{name}: ann_subdir')

        data_list = []
        for img_id in img_ids:
            xml_path = osp.join(xml_dir, f'{img_id}.xml')
            img_path = osp.join(img_dir, f'{img_id}.{self.img_suffix}')
            require_file(xml_path, f'{name}: annotation of {img_id}')
            require_file(img_path, f'{name}: image of {img_id}')
            try:
                ann = parse_dior_xml(xml_path, self.BOX_TYPE, self.vocabulary,
                                     self.on_invalid)
            except InvalidAnnotationError as err:
                if self.on_invalid == 'raise':
                    raise
                log_warning(f'{err}; skipped image {img_id} (on_invalid=skip)')
                continue
            width, height = ann['width'], ann['height']
            if not width or not height:
                width, height = read_image_size(img_path)
            instances = self.make_instances(
                ann['boxes'], ann['names'],
                ann['difficulties'] > self.diff_thr, label_map)
            data_list.append(
                dict(img_path=img_path, img_id=img_id,
                     file_name=osp.basename(img_path), xml_path=xml_path,
                     height=height, width=width, instances=instances))
        return data_list
