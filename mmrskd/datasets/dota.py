"""DOTA v1.0: raw ``labelTxt`` files (with headers) and split patches.

Annotation format (captain-whu.github.io/DOTA), one text file per image::

    imagesource:GoogleEarth        <- header, raw files only
    gsd:0.146343590398             <- header, raw files only (may be 'null')
    x1 y1 x2 y2 x3 y3 x4 y4 class difficult

* Coordinates are pixels of the image, x to the right and y down.
* The four vertices are kept **in file order**, nominally clockwise on screen
  as the DOTA annotators placed them; ``bbox`` is that 8-value
  quadrilateral (qbox). ``mmrotate.ConvertBoxType`` turns it into an rbox
  ``(cx, cy, w, h, t)`` by ``cv2.minAreaRect``, ``t`` in radians, positive
  from the x axis towards the y axis (clockwise on screen).
* ``difficult`` is 0 or 1 in raw files; mmrotate's split tool writes 2 for
  objects cut by a patch border. ``difficult > diff_thr`` sets
  ``ignore_flag=1``.
"""
import glob
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmrskd.datasets.base_rs_dataset import BaseRSDataset
from mmrskd.datasets.utils import (InvalidAnnotationError, check_on_invalid,
                                   log_warning, make_palette,
                                   read_image_size,
                                   report_invalid, require_dir)
from mmrskd.registry import DATASETS
from mmrskd.utils import MMRSKDError

DOTA_HEADER_KEYS = ('imagesource', 'gsd')


def parse_dota_txt(
    path: str,
    classes: Optional[Sequence[str]] = None,
    on_invalid: str = 'raise'
) -> Tuple[np.ndarray, List[str], np.ndarray]:
    """Read one DOTA ``labelTxt`` file (raw with headers, or a split patch).

    Args:
        path (str): the ``.txt`` file.
        classes (Sequence[str], optional): the allowed class names; a name
            outside it is an invalid line. None accepts any name.
        on_invalid (str): ``'raise'`` an error naming file and line at the
            first invalid line, or ``'skip'`` it with a warning.

    Returns:
        tuple:

        - polys (np.ndarray): (n, 8) float32, ``x1 y1 ... x4 y4`` in file
          order.
        - names (list[str]): n class names.
        - difficulties (np.ndarray): (n,) int64; 0 when the column is absent.

    Raises:
        InvalidAnnotationError: an invalid line with ``on_invalid='raise'``.
    """
    check_on_invalid(on_invalid)
    polys, names, difficulties = [], [], []
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    seen_object = False
    for line_no, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0].split(':', 1)[0]
        if not seen_object and ':' in tokens[0] and key in DOTA_HEADER_KEYS:
            continue
        seen_object = True
        try:
            poly, name, difficulty = _parse_object_line(tokens, classes)
        except InvalidAnnotationError as err:
            report_invalid(f'{path}:{line_no}: {err}', on_invalid)
            continue
        polys.append(poly)
        names.append(name)
        difficulties.append(difficulty)
    return (np.array(polys, dtype=np.float32).reshape(-1, 8), names,
            np.array(difficulties, dtype=np.int64))


def _parse_object_line(tokens: List[str], classes: Optional[Sequence[str]]):
    """Parse the tokens of one object line; raise on anything malformed."""
    if len(tokens) not in (9, 10):
        raise InvalidAnnotationError(
            f'expected "x1 y1 x2 y2 x3 y3 x4 y4 class difficult", got '
            f'{len(tokens)} fields: {" ".join(tokens)!r}')
    try:
        poly = [float(v) for v in tokens[:8]]
    except ValueError:
        raise InvalidAnnotationError(
            f'non-numeric coordinate in {" ".join(tokens[:8])!r}') from None
    if not np.isfinite(poly).all():
        raise InvalidAnnotationError(
            f'non-finite coordinate in {" ".join(tokens[:8])!r}')
    name = tokens[8]
    if classes is not None and name not in classes:
        raise InvalidAnnotationError(
            f'unknown class {name!r}; expected one of {tuple(classes)}')
    difficulty = 0
    if len(tokens) == 10:
        try:
            difficulty = int(tokens[9])
        except ValueError:
            raise InvalidAnnotationError(
                f'difficult flag {tokens[9]!r} is not an integer') from None
    return poly, name, difficulty


@DATASETS.register_module()
class DOTADataset(BaseRSDataset):
    """DOTA v1.0 with the 15 classes in mmrotate's order.

    Compared with ``mmrotate.DOTADataset``: raw ``labelTxt`` headers are
    skipped instead of crashing the loader, each image's real size is read
    from its file header (mmrotate assumes ``img_shape`` for all), files are
    sorted so the order is reproducible, a label naming an unknown class or
    a malformed line gives an error with file and line, and images without
    labels have ``instances=[]``.

    Args:
        ann_file (str): the directory of ``.txt`` label files, relative to
            ``data_root`` (e.g. ``'train/labelTxt/'``, or ``'trainval/
            annfiles/'`` for split patches). ``''`` selects the image-only
            mode (unlabelled test set): every image in
            ``data_prefix['img_path']`` with ``instances=[]``. In
            ``test_mode``, a directory without label files also gives the
            image-only mode (with a warning).
        data_prefix (dict): ``img_path``: the image directory.
        diff_thr (int): objects with ``difficult > diff_thr`` get
            ``ignore_flag=1``. The default 100 ignores nothing, as mmrotate;
            use 0 to ignore DOTA's difficult objects like the official
            evaluation, 1 to ignore only objects cut by a split border.
        img_suffix (str): image file extension. Defaults to ``'png'``.
        **kwargs: see :class:`BaseRSDataset` (``on_invalid``, ``metainfo``,
            ``filter_cfg``, ...).
    """

    METAINFO = {
        'classes':
        ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
         'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
         'basketball-court', 'storage-tank', 'soccer-ball-field', 'roundabout',
         'harbor', 'swimming-pool', 'helicopter'),
        'palette': make_palette(15)
    }

    def __init__(self,
                 *args,
                 diff_thr: int = 100,
                 img_suffix: str = 'png',
                 **kwargs) -> None:
        self.diff_thr = diff_thr
        self.img_suffix = img_suffix
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read every label file (or image, in image-only mode).

        Returns:
            list[dict]: one entry per image, sorted by image id.
        """
        self.check_data_root()
        label_map = self.label_map()
        img_dir = self.data_prefix.get('img_path', '')
        require_dir(img_dir, "DOTADataset: data_prefix['img_path']")
        if not self.ann_file:
            return self._load_images_only(img_dir)
        require_dir(self.ann_file, 'DOTADataset: ann_file (label directory)')
        txt_files = sorted(glob.glob(osp.join(self.ann_file, '*.txt')))
        if not txt_files:
            if self.test_mode:
                log_warning(f'DOTADataset: no .txt label files in '
                            f'{self.ann_file}; loading the images of '
                            f'{img_dir} without labels')
                return self._load_images_only(img_dir)
            raise MMRSKDError(
                f'DOTADataset: no .txt label files in {self.ann_file}; point '
                "ann_file at the labelTxt directory, or use ann_file='' for "
                'an unlabelled test set')

        data_list = []
        for txt_file in txt_files:
            img_id = osp.splitext(osp.basename(txt_file))[0]
            img_path = osp.join(img_dir, f'{img_id}.{self.img_suffix}')
            polys, names, difficulties = parse_dota_txt(
                txt_file, classes=self.vocabulary, on_invalid=self.on_invalid)
            width, height = read_image_size(img_path)
            instances = self.make_instances(polys, names,
                                            difficulties > self.diff_thr,
                                            label_map)
            data_list.append(
                dict(img_path=img_path, img_id=img_id,
                     file_name=osp.basename(img_path), height=height,
                     width=width, instances=instances))
        return data_list

    def _load_images_only(self, img_dir: str) -> List[dict]:
        """Entries with ``instances=[]`` for every image in ``img_dir``."""
        img_paths = sorted(
            glob.glob(osp.join(img_dir, f'*.{self.img_suffix}')))
        if not img_paths:
            raise MMRSKDError(
                f'DOTADataset: no .{self.img_suffix} images in {img_dir}; '
                "check data_prefix['img_path'] and img_suffix")
        data_list = []
        for img_path in img_paths:
            width, height = read_image_size(img_path)
            data_list.append(
                dict(img_path=img_path,
                     img_id=osp.splitext(osp.basename(img_path))[0],
                     file_name=osp.basename(img_path), height=height,
                     width=width, instances=[]))
        return data_list
