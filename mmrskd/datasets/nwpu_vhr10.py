"""NWPU VHR-10: 650 positive and 150 negative (background) images.

Layout (Cheng et al., ISPRS 2014)::

    positive image set/001.jpg ... 650.jpg
    negative image set/001.jpg ... 150.jpg
    ground truth/001.txt ... 650.txt

A ground-truth line is ``(x1,y1),(x2,y2),c``: top-left and bottom-right
corners in pixels and a class number 1..10, with space padding and a
trailing space in the real files, e.g. ``( 68,316),(170,411),1 ``.
``bbox`` is ``[x1, y1, x2, y2]`` as written.

There is no official split. :func:`make_nwpu_split` defines a
deterministic one and ``splits/nwpu_vhr10.json`` (next to this file) holds
its result for the real dataset; the dataset reads any split file of the
same form::

    {"train": {"positive": ["001", ...], "negative": ["004", ...]},
     "val": {...}, "test": {...}}
"""
import hashlib
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmrskd.datasets.base_rs_dataset import BaseRSDataset
from mmrskd.datasets.utils import (check_on_invalid, make_palette,
                                   read_image_size, report_invalid,
                                   require_dir, require_file)
from mmrskd.registry import DATASETS
from mmrskd.utils import MMRSKDError

NWPU_CLASSES = ('airplane', 'ship', 'storage tank', 'baseball diamond',
                'tennis court', 'basketball court', 'ground track field',
                'harbor', 'bridge', 'vehicle')
SHIPPED_SPLIT_FILE = osp.join(
    osp.dirname(osp.abspath(__file__)), 'splits', 'nwpu_vhr10.json')
SPLIT_NAMES = ('train', 'val', 'test')
IMAGE_SETS = ('positive', 'negative')

_NUMBER = r'\s*([-+]?\d+(?:\.\d*)?)\s*'
_NWPU_LINE = re.compile(rf'^\({_NUMBER},{_NUMBER}\)\s*,\s*'
                        rf'\({_NUMBER},{_NUMBER}\)\s*,\s*(\d+)\s*$')


def parse_nwpu_txt(path: str,
                   on_invalid: str = 'raise') -> Tuple[np.ndarray, np.ndarray]:
    """Read one NWPU VHR-10 ground-truth file.

    Args:
        path (str): the ``.txt`` file.
        on_invalid (str): ``'raise'`` an error naming file and line at the
            first invalid line, or ``'skip'`` it with a warning.

    Returns:
        tuple:

        - boxes (np.ndarray): (n, 4) float32 ``x1 y1 x2 y2``.
        - class_numbers (np.ndarray): (n,) int64 in 1..10 (NWPU numbering;
          ``NWPU_CLASSES[c - 1]`` is the name).

    Raises:
        InvalidAnnotationError: an invalid line with ``on_invalid='raise'``.
    """
    check_on_invalid(on_invalid)
    boxes, numbers = [], []
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f'{path}:{line_no}'
        match = _NWPU_LINE.match(line)
        if match is None:
            report_invalid(
                f'{where}: expected "(x1,y1),(x2,y2),class", got '
                f'{line.strip()!r}', on_invalid)
            continue
        box = [float(v) for v in match.groups()[:4]]
        number = int(match.group(5))
        if not 1 <= number <= len(NWPU_CLASSES):
            report_invalid(
                f'{where}: unknown class number {number}; NWPU VHR-10 '
                f'classes are 1..{len(NWPU_CLASSES)}', on_invalid)
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            report_invalid(
                f'{where}: the second corner must be below and right of the '
                f'first, got {line.strip()!r}', on_invalid)
            continue
        boxes.append(box)
        numbers.append(number)
    return (np.array(boxes, dtype=np.float32).reshape(-1, 4),
            np.array(numbers, dtype=np.int64))


def make_nwpu_split(
    positive_ids: Sequence[str],
    negative_ids: Sequence[str],
    ratios: Tuple[float, float, float] = (0.6, 0.2, 0.2),
    sizes: Optional[Tuple[int, int, int]] = None
) -> Dict[str, Dict[str, List[str]]]:
    """A deterministic train/val/test split of NWPU VHR-10.

    Each image set is ordered by the SHA-1 of ``'nwpu_vhr10/<set>/<id>'``
    (independent of any random generator or library version); the first
    ``ratios[0]`` of it goes to train, the next ``ratios[1]`` to val and the
    rest to test (counts rounded half up). The shipped
    ``splits/nwpu_vhr10.json`` is this function applied to the ids
    ``001..650`` (positive) and ``001..150`` (negative): 390/130/130
    positive and 90/30/30 negative images.

    Args:
        positive_ids (Sequence[str]): ids of ``positive image set``.
        negative_ids (Sequence[str]): ids of ``negative image set``.
        ratios (tuple[float]): train, val and test fractions.
        sizes (tuple[int], optional): exact train, val and test image
            counts instead of ``ratios``, adding up to all images; the
            positive images are shared out in proportion (largest
            remainders), the negative ones fill each split up.

    Returns:
        dict: ``{split: {'positive': ids, 'negative': ids}}``, ids sorted.
    """
    if sizes is None:
        counts = {image_set: _ratio_counts(len(ids), ratios)
                  for image_set, ids in zip(IMAGE_SETS,
                                            (positive_ids, negative_ids))}
    else:
        total = len(positive_ids) + len(negative_ids)
        if sum(sizes) != total or min(sizes) < 0:
            raise MMRSKDError(f'sizes={tuple(sizes)}: need non-negative '
                              f'counts adding up to the {total} images')
        positive = _apportion(len(positive_ids), sizes)
        counts = dict(positive=positive,
                      negative=[n - p for n, p in zip(sizes, positive)])
    split = {name: {} for name in SPLIT_NAMES}
    for image_set, ids in zip(IMAGE_SETS, (positive_ids, negative_ids)):
        ordered = sorted(
            ids,
            key=lambda i: hashlib.sha1(
                f'nwpu_vhr10/{image_set}/{i}'.encode()).hexdigest())
        ends = np.cumsum(counts[image_set])
        starts = (0, *ends[:-1])
        for name, start, end in zip(SPLIT_NAMES, starts, ends):
            split[name][image_set] = sorted(ordered[start:end])
    return split


def _ratio_counts(num: int, ratios: Tuple[float, float, float]) -> List[int]:
    """Train and val by fraction (rounded half up), test the rest."""
    num_train = int(num * ratios[0] + 0.5)
    num_val = int(num * ratios[1] + 0.5)
    return [num_train, num_val, num - num_train - num_val]


def _apportion(num: int, sizes: Sequence[int]) -> List[int]:
    """``num`` items shared out over bins in proportion to ``sizes`` by
    largest remainders; no bin gets more than its size."""
    total = sum(sizes)
    quotas = [num * size / total if total else 0.0 for size in sizes]
    counts = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(sizes)),
                          key=lambda k: counts[k] - quotas[k])
    for k in by_remainder[:num - sum(counts)]:
        counts[k] += 1
    return counts


@DATASETS.register_module()
class NWPUVHR10Dataset(BaseRSDataset):
    """NWPU VHR-10 with horizontal boxes, 10 classes in NWPU's order;
    negative images are background images (``instances=[]``).

    Args:
        ann_file (str): split file (JSON, see the module docstring), relative
            to ``data_root``. ``''`` (default) uses the split shipped with
            mmrskd, ``mmrskd/datasets/splits/nwpu_vhr10.json``.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        positive_subdir (str): Defaults to ``'positive image set'``.
        negative_subdir (str): Defaults to ``'negative image set'``.
        ann_subdir (str): Defaults to ``'ground truth'``.
        img_suffix (str): Defaults to ``'jpg'``.
        **kwargs: see :class:`BaseRSDataset` (``on_invalid``, ``metainfo``,
            ``filter_cfg``, ...). ``filter_cfg=dict(filter_empty_gt=True)``
            drops the negative images.
    """

    METAINFO = {'classes': NWPU_CLASSES, 'palette': make_palette(10)}

    def __init__(self,
                 *args,
                 split: str = 'train',
                 positive_subdir: str = 'positive image set',
                 negative_subdir: str = 'negative image set',
                 ann_subdir: str = 'ground truth',
                 img_suffix: str = 'jpg',
                 **kwargs) -> None:
        if split not in SPLIT_NAMES:
            raise MMRSKDError(f'NWPUVHR10Dataset: split={split!r}; use one '
                              f'of {SPLIT_NAMES}')
        self.split = split
        self.positive_subdir = positive_subdir
        self.negative_subdir = negative_subdir
        self.ann_subdir = ann_subdir
        self.img_suffix = img_suffix
        super().__init__(*args, **kwargs)

    def read_split(self) -> Dict[str, List[str]]:
        """The ``{'positive': ids, 'negative': ids}`` of ``self.split``."""
        path = self.ann_file or SHIPPED_SPLIT_FILE
        require_file(path, 'NWPUVHR10Dataset: ann_file (split file)')
        try:
            with open(path, encoding='utf-8') as f:
                splits = json.load(f)
        except json.JSONDecodeError as err:
            raise MMRSKDError(f'{path}:{err.lineno}: invalid JSON ({err.msg})'
                              '; regenerate the split file') from None
        entry = splits.get(self.split) if isinstance(splits, dict) else None
        if not isinstance(entry, dict) or not all(
                isinstance(entry.get(s, []), list) for s in IMAGE_SETS):
            raise MMRSKDError(
                f'{path}: no "{self.split}" entry of the form {{"positive": '
                '[ids], "negative": [ids]}; see make_nwpu_split')
        return {s: [str(i) for i in entry.get(s, [])] for s in IMAGE_SETS}

    def load_data_list(self) -> List[dict]:
        """Read the ground truth of every positive image of the split and
        list its negative images.

        Returns:
            list[dict]: positive images, then negative ones, in split order.
        """
        self.check_data_root()
        label_map = self.label_map()
        split = self.read_split()
        dirs = {
            'positive': osp.join(self.data_root, self.positive_subdir),
            'negative': osp.join(self.data_root, self.negative_subdir),
        }
        ann_dir = osp.join(self.data_root, self.ann_subdir)
        for image_set in IMAGE_SETS:
            if split[image_set]:
                require_dir(dirs[image_set],
                            f'NWPUVHR10Dataset: {image_set} image directory')
        if split['positive']:
            require_dir(ann_dir, 'NWPUVHR10Dataset: ground-truth directory')

        data_list = []
        for image_set in IMAGE_SETS:
            for img_id in split[image_set]:
                img_path = osp.join(dirs[image_set],
                                    f'{img_id}.{self.img_suffix}')
                width, height = read_image_size(img_path)
                instances = []
                if image_set == 'positive':
                    instances = self._load_ground_truth(
                        osp.join(ann_dir, f'{img_id}.txt'), label_map)
                data_list.append(
                    dict(img_path=img_path, img_id=f'{image_set}_{img_id}',
                         file_name=osp.basename(img_path), height=height,
                         width=width, instances=instances))
        return data_list

    def _load_ground_truth(self, txt_path: str,
                           label_map: Dict[str, int]) -> List[dict]:
        require_file(txt_path, 'NWPUVHR10Dataset: ground truth')
        boxes, numbers = parse_nwpu_txt(txt_path, self.on_invalid)
        names = [NWPU_CLASSES[n - 1] for n in numbers]
        return self.make_instances(boxes, names, [0] * len(names), label_map)
