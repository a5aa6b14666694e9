"""Split large DOTA-style images into overlapping patches.

Follows mmrotate's ``tools/data/dota/split/img_split.py`` conventions, so
mmrotate configs and checkpoints work on the output unchanged:

* sliding windows of ``int(size / rate)`` pixels with ``int(gap / rate)``
  overlap, in full-image pixels (a rate changes the window, not the image;
  the training pipeline resizes); the last window of a row/column is moved
  back to end at the image border; windows whose image part covers
  ``img_rate_thr`` or less of them are dropped (unless no window passes);
* patches named ``<name>__<window>__<x>___<y>``, e.g. ``P0000__1024__0___0``,
  written to ``<out>/images/`` and their labels to ``<out>/annfiles/``
  (DOTA lines without headers), border patches padded to the full window
  with ``padding_value`` (BGR);
* an object is kept in a window when its IoF (intersection over its own
  area) is ``>= iof_thr``.

Unlike mmrotate, the label of a truncated object (IoF < 1) is clipped to the
window: the intersection polygon when it has four corners, else the
minimum-area rectangle around it (``cv2.minAreaRect``), vertices ordered
clockwise on screen starting next to the object's first vertex. Truncated
objects get difficulty 2, as in mmrotate and DOTA_devkit.

Each image is decoded once; patches are slices of it.
"""
import glob
import logging
import os
import os.path as osp
from functools import partial

import cv2
import numpy as np
import shapely
from mmengine.logging import print_log
from mmengine.utils import track_parallel_progress, track_progress

from mmrskd.datasets.dota import parse_dota_txt
from mmrskd.structures import quadri_polygons
from mmrskd.utils import MMRSKDError

SPLIT_PRESETS = {
    'ss': dict(sizes=(1024, ), gaps=(200, ), rates=(1.0, )),
    'ms': dict(sizes=(1024, ), gaps=(500, ), rates=(0.5, 1.0, 1.5)),
}
DEFAULT_PADDING_VALUE = (104, 116, 124)
IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
TRUNCATED_DIFFICULTY = 2
# an IoF this close to 1 is float noise, not truncation
_IOF_EPS = 1e-6


def window_sizes(sizes, gaps, rates):
    """(window, gap) pairs in full-image pixels, one per size and rate.

    Args:
        sizes (Sequence[int]): patch sizes at rate 1.
        gaps (Sequence[int]): overlaps at rate 1, one per size.
        rates (Sequence[float]): scale factors; a window covers
            ``size / rate`` full-image pixels.

    Returns:
        list[tuple[int, int]]: ``(int(size / rate), int(gap / rate))``.
    """
    if len(sizes) != len(gaps):
        raise MMRSKDError(f'dota_split: {len(sizes)} sizes but {len(gaps)} '
                          'gaps; give one gap per size')
    pairs = []
    for rate in rates:
        if rate <= 0:
            raise MMRSKDError(f'dota_split: rate {rate} must be positive')
        for size, gap in zip(sizes, gaps):
            window, overlap = int(size / rate), int(gap / rate)
            if not 0 <= overlap < window:
                raise MMRSKDError(
                    f'dota_split: gap {gap} must be >= 0 and smaller than '
                    f'size {size}')
            pairs.append((window, overlap))
    return pairs


def _starts(length, window, step):
    """Window starts along one axis; the last one ends at the border."""
    if length <= window:
        return [0]
    num = int(np.ceil((length - window) / step)) + 1
    starts = [step * i for i in range(num)]
    starts[-1] = length - window
    return starts


def sliding_windows(width, height, sizes, gaps, rates, img_rate_thr=0.6):
    """Sliding windows over a ``width`` x ``height`` image.

    Args:
        width (int): image width.
        height (int): image height.
        sizes, gaps, rates: see :func:`window_sizes`.
        img_rate_thr (float): keep windows whose image part is more than this
            fraction of the window; if none is, keep the ones with the
            largest fraction.

    Returns:
        np.ndarray: (N, 4) int64 windows ``x1, y1, x2, y2`` (``x2``, ``y2``
        exclusive; may exceed the image, the patch is then padded).
    """
    windows = []
    for window, gap in window_sizes(sizes, gaps, rates):
        xs = _starts(width, window, window - gap)
        ys = _starts(height, window, window - gap)
        for x in xs:
            for y in ys:
                windows.append((x, y, x + window, y + window))
    windows = np.asarray(windows, dtype=np.int64)
    inside_w = np.minimum(windows[:, 2], width) - windows[:, 0]
    inside_h = np.minimum(windows[:, 3], height) - windows[:, 1]
    img_rates = inside_w * inside_h / (
        (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1]))
    keep = img_rates > img_rate_thr
    if not keep.any():
        keep = np.abs(img_rates - img_rates.max()) < 1e-2
    return windows[keep]


def _order_like(corners, first_vertex):
    """Four corners, clockwise on screen (positive shoelace area in image
    coordinates), starting with the one nearest ``first_vertex``."""
    x, y = corners[:, 0], corners[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) < 0:
        corners = corners[::-1]
    start = int(np.argmin(((corners - first_vertex)**2).sum(axis=1)))
    return np.roll(corners, -start, axis=0)


def clip_polygon(polygon, window_box):
    """The part of a polygon inside a window, as four corners.

    Args:
        polygon (shapely.Polygon): a valid object polygon.
        window_box (shapely.Polygon): the window rectangle.

    Returns:
        np.ndarray: (4, 2) corners: the intersection when it is a
        quadrilateral, else its minimum-area rectangle.
    """
    part = polygon.intersection(window_box)
    if part.geom_type == 'Polygon' and len(part.exterior.coords) == 5:
        corners = np.asarray(part.exterior.coords[:4])
    else:
        points = shapely.get_coordinates(part).astype(np.float32)
        corners = cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float64)
    first = np.asarray(polygon.exterior.coords[0])
    return _order_like(corners, first)


def window_objects(polys, windows, iof_thr=0.7):
    """The objects of each window, in window coordinates.

    Args:
        polys (np.ndarray): (n, 8) object polygons in full-image pixels.
        windows (np.ndarray): (N, 4) windows from :func:`sliding_windows`.
        iof_thr (float): keep objects whose IoF with the window is at least
            this.

    Returns:
        list[tuple]: per window ``(inds, polys, truncated)``: indices into
        ``polys`` (k,), polygons (k, 8) relative to the window's top-left
        corner (clipped when truncated), and a (k,) bool truncation flag.
        Degenerate polygons (zero area) are in no window.
    """
    shapes = quadri_polygons(polys)
    areas = shapely.area(shapes)
    boxes = shapely.box(*windows.T.astype(np.float64))
    lows = np.asarray(polys).reshape(-1, 4, 2).min(axis=1)
    highs = np.asarray(polys).reshape(-1, 4, 2).max(axis=1)
    results = []
    for w, (x1, y1, x2, y2) in enumerate(windows):
        cand = np.flatnonzero((areas > 0) & (lows[:, 0] < x2)
                              & (highs[:, 0] > x1) & (lows[:, 1] < y2)
                              & (highs[:, 1] > y1))
        iofs = shapely.area(shapely.intersection(shapes[cand],
                                                 boxes[w])) / areas[cand]
        inds = cand[iofs >= iof_thr]
        truncated = iofs[iofs >= iof_thr] < 1 - _IOF_EPS
        out = np.asarray(polys, np.float64)[inds].copy()
        for k in np.flatnonzero(truncated):
            out[k] = clip_polygon(shapes[inds[k]], boxes[w]).reshape(-1)
        out[:, 0::2] -= x1
        out[:, 1::2] -= y1
        results.append((inds, out, truncated))
    return results


def crop_patch(img, window, padding_value=DEFAULT_PADDING_VALUE,
               no_padding=False):
    """Slice a window out of an image, padding what lies outside it.

    Args:
        img (np.ndarray): (H, W, C) image.
        window (Sequence[int]): ``x1, y1, x2, y2``.
        padding_value (Sequence[int] | int): fill value (per channel).
        no_padding (bool): return the image part only.

    Returns:
        np.ndarray: (y2 - y1, x2 - x1, C) patch (a contiguous copy).
    """
    x1, y1, x2, y2 = (int(v) for v in window)
    part = img[y1:y2, x1:x2]
    if no_padding or part.shape[:2] == (y2 - y1, x2 - x1):
        return np.ascontiguousarray(part)
    patch = np.empty((y2 - y1, x2 - x1) + img.shape[2:], dtype=img.dtype)
    patch[...] = np.asarray(padding_value, dtype=img.dtype)
    patch[:part.shape[0], :part.shape[1]] = part
    return patch


def _format_line(poly, name, difficulty):
    return ' '.join(f'{v:.1f}' for v in poly) + f' {name} {difficulty}\n'


def split_image(img_path,
                out_dir,
                ann_path=None,
                sizes=(1024, ),
                gaps=(200, ),
                rates=(1.0, ),
                img_rate_thr=0.6,
                iof_thr=0.7,
                padding_value=DEFAULT_PADDING_VALUE,
                no_padding=False,
                img_ext='.png',
                on_invalid='raise'):
    """Split one image (and its raw labelTxt) into patches.

    Args:
        img_path (str): the image.
        out_dir (str): gets ``images/`` and, with ``ann_path``, ``annfiles/``
            (both must exist).
        ann_path (str, optional): its DOTA labelTxt (headers allowed); a
            missing file means no objects.
        sizes, gaps, rates, img_rate_thr: see :func:`sliding_windows`.
        iof_thr (float): see :func:`window_objects`.
        padding_value, no_padding: see :func:`crop_patch`.
        img_ext (str): extension of the written patches.
        on_invalid (str): 'raise' at a malformed label line, or 'skip' it
            with a warning.

    Returns:
        tuple[int, int]: patches written and objects read.
    """
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
    if img is None:
        raise MMRSKDError(
            f'dota_split: cannot read image {img_path}; replace the file (or, '
            'for more than 2^30 pixels, raise OPENCV_IO_MAX_IMAGE_PIXELS)')
    height, width = img.shape[:2]
    windows = sliding_windows(width, height, sizes, gaps, rates, img_rate_thr)
    name = osp.splitext(osp.basename(img_path))[0]
    if ann_path is not None and osp.isfile(ann_path):
        polys, names, difficulties = parse_dota_txt(ann_path,
                                                    on_invalid=on_invalid)
    else:
        polys, names, difficulties = np.zeros((0, 8)), [], np.zeros(0, int)
    objects = window_objects(polys, windows, iof_thr)
    for window, (inds, win_polys, truncated) in zip(windows, objects):
        x1, y1, x2, y2 = window.tolist()
        patch_name = f'{name}__{x2 - x1}__{x1}___{y1}'
        patch = crop_patch(img, window, padding_value, no_padding)
        cv2.imwrite(osp.join(out_dir, 'images', patch_name + img_ext), patch)
        if ann_path is None:
            continue
        lines = [
            _format_line(
                poly, names[i],
                TRUNCATED_DIFFICULTY if cut else int(difficulties[i]))
            for i, poly, cut in zip(inds, win_polys, truncated)
        ]
        with open(osp.join(out_dir, 'annfiles', patch_name + '.txt'),
                  'w') as f:
            f.writelines(lines)
    return len(windows), len(polys)


def _split_task(task, **kwargs):
    img_path, ann_path = task
    return split_image(img_path, ann_path=ann_path, **kwargs)


def split_dota(img_dirs,
               out_dir,
               ann_dirs=None,
               sizes=(1024, ),
               gaps=(200, ),
               rates=(1.0, ),
               img_rate_thr=0.6,
               iof_thr=0.7,
               padding_value=DEFAULT_PADDING_VALUE,
               no_padding=False,
               img_ext='.png',
               on_invalid='raise',
               nproc=1):
    """Split every image of one or more folders, with a progress bar.

    Args:
        img_dirs (str | Sequence[str]): folders of full images (png, jpg,
            tif, bmp), e.g. DOTA's ``train/images`` and ``val/images`` for a
            trainval split.
        out_dir (str): output folder; must be new or empty.
        ann_dirs (str | Sequence[str], optional): the raw labelTxt folder of
            each image folder (``<name>.txt`` per image; a missing file means
            no objects); None splits images only (test set).
        nproc (int): worker processes, each holding one decoded image
            (H x W x 3 bytes: 1.2 GB for 20000 x 20000 pixels).
        Others: see :func:`split_image`.

    Returns:
        tuple[int, int, int]: images, patches and objects.
    """
    img_dirs = [img_dirs] if isinstance(img_dirs, str) else list(img_dirs)
    if isinstance(ann_dirs, str):
        ann_dirs = [ann_dirs]
    if ann_dirs is not None and len(ann_dirs) != len(img_dirs):
        raise MMRSKDError(f'dota_split: {len(img_dirs)} image folders but '
                          f'{len(ann_dirs)} label folders; give one label '
                          'folder per image folder')
    for folder in img_dirs + list(ann_dirs or []):
        if not osp.isdir(folder):
            raise MMRSKDError(f'dota_split: folder {folder} does not exist')
    if osp.isdir(out_dir) and os.listdir(out_dir):
        raise MMRSKDError(f'dota_split: output folder {out_dir} is not empty; '
                          'choose a new one so old patches do not mix in')
    window_sizes(sizes, gaps, rates)  # validate before any work

    tasks = []
    for i, img_dir in enumerate(img_dirs):
        img_paths = sorted(
            p for p in glob.glob(osp.join(img_dir, '*'))
            if osp.splitext(p)[1].lower() in IMG_EXTENSIONS)
        if not img_paths:
            raise MMRSKDError(f'dota_split: no {"/".join(IMG_EXTENSIONS)} '
                              f'images in {img_dir}')
        for path in img_paths:
            name = osp.splitext(osp.basename(path))[0]
            tasks.append((path, None if ann_dirs is None else osp.join(
                ann_dirs[i], name + '.txt')))
    missing = [ann for _, ann in tasks if ann and not osp.isfile(ann)]
    if missing:
        print_log(f'dota_split: {len(missing)} images have no label file '
                  f'(e.g. {missing[0]}); they are split without objects',
                  logger='current', level=logging.WARNING)

    os.makedirs(osp.join(out_dir, 'images'))
    if ann_dirs is not None:
        os.makedirs(osp.join(out_dir, 'annfiles'))
    worker = partial(
        _split_task,
        out_dir=out_dir,
        sizes=tuple(sizes),
        gaps=tuple(gaps),
        rates=tuple(rates),
        img_rate_thr=img_rate_thr,
        iof_thr=iof_thr,
        padding_value=padding_value,
        no_padding=no_padding,
        img_ext=img_ext,
        on_invalid=on_invalid)
    if nproc > 1:
        counts = track_parallel_progress(worker, tasks, nproc)
    else:
        counts = track_progress(worker, tasks)
    return (len(tasks), sum(c[0] for c in counts), sum(c[1] for c in counts))
