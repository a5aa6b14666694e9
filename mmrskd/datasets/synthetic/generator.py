"""The synthetic-dataset entry point: :func:`generate`."""
import os
import os.path as osp
import shutil
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np

from mmrskd.datasets.synthetic.scene import render_scene
from mmrskd.datasets.synthetic.writers import WRITERS
from mmrskd.utils import MMRSKDError

FORMATS = tuple(WRITERS)
# Every EMPTY_EVERY-th image has no object (background / negative image).
EMPTY_EVERY = 8
DIFFICULT_RATIO = 0.1


def default_classes(fmt: str) -> tuple:
    """The default class subset of a format."""
    return WRITERS[_check_format(fmt)].default_classes


def _check_format(fmt: str) -> str:
    if fmt not in WRITERS:
        raise MMRSKDError(f'unknown synthetic format {fmt!r}; use one of '
                          f'{FORMATS}')
    return fmt


def resolve_classes(fmt: str,
                    classes: Union[None, str, Sequence[str]] = None) -> tuple:
    """The class names a set of ``fmt`` is drawn with: ``classes`` checked
    against the format's vocabulary, ``'all'`` for every class, None for
    the default subset."""
    vocabulary = WRITERS[_check_format(fmt)].vocabulary
    if classes is None:
        return default_classes(fmt)
    if classes == 'all':
        return tuple(vocabulary)
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(',') if c.strip()]
    unknown = [c for c in classes if c not in vocabulary]
    if unknown or not classes:
        raise MMRSKDError(
            f'classes {unknown or "(none)"} are not {fmt} class names; '
            f'choose from {tuple(vocabulary)}')
    return tuple(classes)


def _check_split_sizes(split_sizes, names, num_images):
    if sorted(split_sizes) != sorted(names):
        raise MMRSKDError(f'split_sizes={dict(split_sizes)}: name each '
                          f'of the format\'s splits {list(names)} once')
    if sum(split_sizes.values()) != num_images:
        raise MMRSKDError(f'split_sizes={dict(split_sizes)} add up to '
                          f'{sum(split_sizes.values())}, not '
                          f'num_images={num_images}')


def _split_names(num_images: int, writer,
                 split_sizes=None) -> List[Optional[str]]:
    """Split of each image index: consecutive blocks by fraction (or of the
    sizes asked for), every split non-empty when there are enough images;
    None throughout for a writer that splits the images itself."""
    splits = writer.splits
    if not splits:
        if split_sizes:
            _check_split_sizes(split_sizes, writer.sized_splits, num_images)
        return [None] * num_images
    names = [name for name, _ in splits]
    if split_sizes:
        _check_split_sizes(split_sizes, names, num_images)
        return [name for name in names for _ in range(split_sizes[name])]
    counts = [int(num_images * fraction + 0.5) for _, fraction in splits]
    counts[-1] = max(0, num_images - sum(counts[:-1]))
    for i, count in enumerate(counts):
        donor = int(np.argmax(counts))
        if count == 0 and counts[donor] > 1:
            counts[donor] -= 1
            counts[i] = 1
    return [name for (name, _), count in zip(splits, counts)
            for _ in range(count)]


def generate(fmt: str,
             out_dir: str,
             num_images: int,
             seed: int = 0,
             img_size: Optional[int] = None,
             classes: Union[None, str, Sequence[str]] = None,
             overwrite: bool = False,
             split_sizes: Optional[Mapping[str, int]] = None) -> List[dict]:
    """Write a small synthetic dataset in a real on-disk format.

    Image ``i`` is rendered from ``numpy.random.default_rng([seed, i])``,
    so the same arguments give byte-identical files. Every
    ``EMPTY_EVERY``-th image has no objects; about 10% of the objects are
    difficult (drawn at low contrast).

    Args:
        fmt (str): ``'dota'``, ``'dior'`` (writes DIOR and DIOR-R
            annotations), ``'hrsc'`` or ``'nwpu'``.
        out_dir (str): the dataset root to create.
        num_images (int): number of images, all splits together.
        seed (int): random seed. Defaults to 0.
        img_size (int, optional): image width in pixels (HRSC and NWPU
            images are wider than tall). Defaults to the format's default
            (256; 320 for HRSC).
        classes (str | Sequence[str], optional): real class names of the
            dataset (or one comma-separated string), or ``'all'``; defaults
            to a small, visually distinct subset (:func:`default_classes`).
        overwrite (bool): replace the format's files in an ``out_dir`` that
            already has some. Defaults to False.
        split_sizes (dict[str, int], optional): images per split, e.g.
            ``{'train': 120, 'val': 400}`` for a larger evaluation set; they
            add up to ``num_images``. NWPU shares its positive images out
            over the splits in proportion. Defaults to the format's
            fractions.

    Returns:
        list[dict]: one ground-truth record per image, exactly as written
        (see :mod:`mmrskd.datasets.synthetic.writers`).
    """
    writer = WRITERS[_check_format(fmt)]()
    classes = resolve_classes(fmt, classes)
    if num_images < 1:
        raise MMRSKDError(f'num_images={num_images}: must be at least 1')
    width = int(img_size or writer.default_size)
    height = int(round(width * writer.aspect))
    if min(width, height) < 64:
        raise MMRSKDError(f'img_size={img_size}: images need at least 64 px '
                          'on each side to hold the objects')
    existing = [p for p in writer.outputs if osp.exists(osp.join(out_dir, p))]
    if existing and not overwrite:
        raise MMRSKDError(f'{out_dir} already holds {existing}; pass '
                          'overwrite=True (--overwrite) to replace them')
    for path in existing:
        path = osp.join(out_dir, path)
        if osp.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(out_dir, exist_ok=True)

    area_objects = max(2, width * height // 8000)
    records = []
    for index, split in enumerate(
            _split_names(num_images, writer, split_sizes)):
        rng = np.random.default_rng([seed, index])
        count = 0
        if index % EMPTY_EVERY != EMPTY_EVERY - 1:
            count = int(rng.integers(1, min(writer.max_objects,
                                            area_objects) + 1))
        image, objects = render_scene(rng, width, height, classes, count,
                                      DIFFICULT_RATIO)
        records.append(
            writer.write(out_dir, index, split, image, objects, rng))
    writer.finish(out_dir, records, split_sizes)
    return records
