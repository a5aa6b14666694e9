"""HRSC2016 ship detection.

Layout (Liu et al., ICPRAM 2017)::

    FullDataSet/AllImages/100000001.bmp
    FullDataSet/Annotations/100000001.xml
    ImageSets/{train,val,trainval,test}.txt     <- 9-digit ids

Each ``<HRSC_Object>`` has ``Class_ID`` (``'1' + '000000' + two-digit
class``), ``difficult``, the horizontal box ``box_xmin..box_ymax`` and the
rotated box ``mbox_cx, mbox_cy, mbox_w, mbox_h, mbox_ang``.

* ``mbox_ang`` is in **radians**, positive from the x axis towards the y
  axis (clockwise on screen, y down), the same convention as mmrotate's
  rbox; ``mbox_w`` lies along that direction.
* ``bbox`` is the quadrilateral of the corners ``(-w/2, -h/2), (w/2, -h/2),
  (w/2, h/2), (-w/2, h/2)`` of the box frame, rotated by ``mbox_ang`` and
  moved to the centre: clockwise on screen, starting at the corner that is
  top-left when the angle is 0.
* Width and height come from ``Img_SizeWidth`` and ``Img_SizeHeight``
  (mmrotate 1.x reads the width twice); when absent, from the image.
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

RBOX_TAGS = ('mbox_cx', 'mbox_cy', 'mbox_w', 'mbox_h', 'mbox_ang')
HRSC_CLASSES = (
    'ship', 'aircraft carrier', 'warcraft', 'merchant ship', 'Nimitz',
    'Enterprise', 'Arleigh Burke', 'WhidbeyIsland', 'Perry', 'Sanantonio',
    'Ticonderoga', 'Kitty Hawk', 'Kuznetsov', 'Abukuma', 'Austen', 'Tarawa',
    'Blue Ridge', 'Container', 'OXo|--)', 'Car carrier([]==[])', 'Hovercraft',
    'yacht', 'CntShip(_|.--.--|_]=', 'Cruise', 'submarine', 'lute', 'Medical',
    'Car carrier(======|', 'Ford-class', 'Midway-class', 'Invincible-class')
# Two-digit class numbers of HRSC2016 level 3; 21 and 23 are unused.
HRSC_CLASS_NUMBERS = tuple(f'{i:02d}' for i in range(1, 34)
                           if i not in (21, 23))
HRSC_CLASS_IDS = {
    f'1{"0" * 6}{number}': name
    for number, name in zip(HRSC_CLASS_NUMBERS, HRSC_CLASSES)
}


def hrsc_rbox_to_qbox(rboxes: np.ndarray) -> np.ndarray:
    """Corners of rotated boxes, clockwise on screen.

    Args:
        rboxes (np.ndarray): (n, 5) ``cx, cy, w, h, angle`` (radians).

    Returns:
        np.ndarray: (n, 8) ``x1 y1 ... x4 y4``, the corners ``(-w/2, -h/2),
        (w/2, -h/2), (w/2, h/2), (-w/2, h/2)`` of the box frame.
    """
    rboxes = np.asarray(rboxes, dtype=np.float64).reshape(-1, 5)
    cx, cy, w, h, angle = (rboxes[:, i:i + 1] for i in range(5))
    local_x = np.array([-0.5, 0.5, 0.5, -0.5]) * w
    local_y = np.array([-0.5, -0.5, 0.5, 0.5]) * h
    cos, sin = np.cos(angle), np.sin(angle)
    xs = cx + local_x * cos - local_y * sin
    ys = cy + local_x * sin + local_y * cos
    return np.stack([xs, ys], axis=-1).reshape(-1, 8).astype(np.float32)


def parse_hrsc_xml(path: str,
                   class_ids: Optional[Sequence[str]] = None,
                   on_invalid: str = 'raise') -> dict:
    """Read one HRSC2016 annotation file.

    Args:
        path (str): the ``.xml`` file.
        class_ids (Sequence[str], optional): the allowed ``Class_ID`` values;
            another value is an invalid object. None accepts any.
        on_invalid (str): ``'raise'`` an error naming file and line at the
            first invalid object, or ``'skip'`` it with a warning.

    Returns:
        dict:

        - width, height (int | None): ``Img_SizeWidth``/``Img_SizeHeight``,
          None when absent.
        - rboxes (np.ndarray): (n, 5) float32 ``cx, cy, w, h, angle``
          (radians).
        - qboxes (np.ndarray): (n, 8) float32, see :func:`hrsc_rbox_to_qbox`.
        - class_ids (list[str]): n ``Class_ID`` values.
        - difficulties (np.ndarray): (n,) int64; 0 when absent.

    Raises:
        InvalidAnnotationError: the file is not well-formed XML, or an
            invalid object with ``on_invalid='raise'``.
    """
    check_on_invalid(on_invalid)
    root, lines = parse_xml_with_lines(path)
    width = height = None
    if root.findtext('Img_SizeWidth', '').strip():
        width = int(xml_float(root, 'Img_SizeWidth', path, lines[root]))
        height = int(xml_float(root, 'Img_SizeHeight', path, lines[root]))

    rboxes, ids, difficulties = [], [], []
    for obj in root.findall('HRSC_Objects/HRSC_Object'):
        line = lines[obj]
        try:
            class_id = xml_text(obj, 'Class_ID', path, line)
            if class_ids is not None and class_id not in class_ids:
                raise InvalidAnnotationError(
                    f'{path}:{lines[obj.find("Class_ID")]}: unknown Class_ID '
                    f'{class_id}; HRSC2016 classes are 1000000NN with NN in '
                    '01..33 except 21 and 23')
            rbox = [xml_float(obj, tag, path, line) for tag in RBOX_TAGS]
            if rbox[2] <= 0 or rbox[3] <= 0:
                raise InvalidAnnotationError(
                    f'{path}:{line}: mbox_w and mbox_h must be positive, got '
                    f'{rbox[2]} and {rbox[3]}')
            difficulty = 0
            if obj.find('difficult') is not None:
                difficulty = int(xml_float(obj, 'difficult', path, line))
        except InvalidAnnotationError as err:
            report_invalid(str(err), on_invalid)
            continue
        rboxes.append(rbox)
        ids.append(class_id)
        difficulties.append(difficulty)
    rboxes = np.array(rboxes, dtype=np.float32).reshape(-1, 5)
    return dict(width=width, height=height, rboxes=rboxes,
                qboxes=hrsc_rbox_to_qbox(rboxes), class_ids=ids,
                difficulties=np.array(difficulties, dtype=np.int64))


@DATASETS.register_module()
class HRSCDataset(BaseRSDataset):
    """HRSC2016 with oriented boxes: one class ``ship``, or the 31 classes
    of level 3 with ``classwise=True``.

    ``bbox`` is an 8-value quadrilateral (see the module docstring); load it
    with ``mmdet.LoadAnnotations(box_type='qbox')`` and
    ``mmrotate.ConvertBoxType``.

    Args:
        ann_file (str): split file with one id per line, relative to
            ``data_root`` (``'ImageSets/trainval.txt'``).
        data_prefix (dict): ``sub_data_root``: the folder holding
            ``img_subdir`` and ``ann_subdir``. Defaults to ``'FullDataSet/'``.
        img_subdir (str): Defaults to ``'AllImages'``.
        ann_subdir (str): Defaults to ``'Annotations'``.
        classwise (bool): use the 31 classes. An unknown ``Class_ID`` is
            then an invalid annotation. Defaults to False.
        diff_thr (int): objects with ``difficult > diff_thr`` get
            ``ignore_flag=1``. Defaults to 0.
        img_suffix (str): Defaults to ``'bmp'``.
        **kwargs: see :class:`BaseRSDataset` (``on_invalid``, ``metainfo``,
            ``filter_cfg``, ...).
    """

    METAINFO = {
        'classes': HRSC_CLASSES,
        'classes_id': HRSC_CLASS_NUMBERS,
        'palette': make_palette(len(HRSC_CLASSES))
    }

    def __init__(self,
                 *args,
                 img_subdir: str = 'AllImages',
                 ann_subdir: str = 'Annotations',
                 classwise: bool = False,
                 diff_thr: int = 0,
                 img_suffix: str = 'bmp',
                 data_prefix: Optional[dict] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        self.classwise = classwise
        self.diff_thr = diff_thr
        self.img_suffix = img_suffix
        if data_prefix is None:
            data_prefix = dict(sub_data_root='FullDataSet/')
        if not classwise:
            metainfo = dict(dict(classes=('ship', )), **(metainfo or {}))
        super().__init__(
            *args, data_prefix=data_prefix, metainfo=metainfo, **kwargs)

    @property
    def vocabulary(self) -> Sequence[str]:
        """All 31 class names with ``classwise``, else ``('ship',)``."""
        return HRSC_CLASSES if self.classwise else ('ship', )

    def load_data_list(self) -> List[dict]:
        """Read the XML file of every id in the split file.

        Returns:
            list[dict]: one entry per id, in split-file order.
        """
        self.check_data_root()
        label_map = self.label_map()
        img_ids = read_id_list(self.ann_file,
                               'HRSCDataset: ann_file (split file)')
        sub_root = self.data_prefix.get('sub_data_root', '')
        img_dir = osp.join(sub_root, self.img_subdir)
        xml_dir = osp.join(sub_root, self.ann_subdir)
        require_dir(img_dir, 'HRSCDataset: image directory')
        require_dir(xml_dir, 'HRSCDataset: annotation directory')
        class_ids = HRSC_CLASS_IDS if self.classwise else None

        data_list = []
        for img_id in img_ids:
            xml_path = osp.join(xml_dir, f'{img_id}.xml')
            img_path = osp.join(img_dir, f'{img_id}.{self.img_suffix}')
            require_file(xml_path, f'HRSCDataset: annotation of {img_id}')
            require_file(img_path, f'HRSCDataset: image of {img_id}')
            try:
                ann = parse_hrsc_xml(xml_path, class_ids, self.on_invalid)
            except InvalidAnnotationError as err:
                if self.on_invalid == 'raise':
                    raise
                log_warning(f'{err}; skipped image {img_id} (on_invalid=skip)')
                continue
            width, height = ann['width'], ann['height']
            if not width or not height:
                width, height = read_image_size(img_path)
            instances = self.make_instances(
                ann['qboxes'], self._class_names(ann['class_ids']),
                ann['difficulties'] > self.diff_thr, label_map)
            data_list.append(
                dict(img_path=img_path, img_id=img_id,
                     file_name=osp.basename(img_path), xml_path=xml_path,
                     height=height, width=width, instances=instances))
        return data_list

    def _class_names(self, class_ids: Sequence[str]) -> List[str]:
        if not self.classwise:
            return ['ship'] * len(class_ids)
        return [HRSC_CLASS_IDS[class_id] for class_id in class_ids]
