"""Write a small synthetic remote-sensing dataset in a real on-disk format.

Example::

    python tools/misc/make_synthetic_data.py --format dota \
        --out data/synthetic/dota --num-images 150 --seed 0

The matching configs are ``configs/_base_/datasets/synthetic_*.py``.
"""
import argparse
import os.path as osp
import sys

from mmrskd.datasets.synthetic import FORMATS, generate, resolve_classes
from mmrskd.utils import MMRSKDError


def split_sizes(text):
    """``'train=120,val=400'`` -> ``{'train': 120, 'val': 400}``."""
    try:
        return {name.strip(): int(count) for name, count in
                (item.split('=') for item in text.split(','))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r}: expected SPLIT=N[,SPLIT=N], e.g. train=120,val=400')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a synthetic dataset in the on-disk format of '
        'DOTA v1.0, DIOR/DIOR-R, HRSC2016 or NWPU VHR-10.')
    parser.add_argument('--format', required=True, choices=FORMATS)
    parser.add_argument(
        '--out', help='dataset root (default: data/synthetic/<format>)')
    parser.add_argument('--num-images', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--img-size', type=int, help='image width in pixels (default: 256; '
        '320 for hrsc); hrsc and nwpu images are wider than tall')
    parser.add_argument(
        '--classes', help='comma-separated real class names of the dataset, '
        'or "all" (default: a small visually distinct subset)')
    parser.add_argument(
        '--split-sizes', type=split_sizes, metavar='SPLIT=N[,SPLIT=N]',
        help='images per split instead of the format\'s fractions, e.g. '
        'train=120,val=400 (they add up to --num-images)')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace a dataset already written to --out')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = args.out or osp.join('data', 'synthetic', args.format)
    try:
        records = generate(args.format, out, args.num_images, args.seed,
                           args.img_size, args.classes, args.overwrite,
                           args.split_sizes)
    except MMRSKDError as err:
        sys.exit(f'error: {err}')
    num_objects = sum(len(r['instances']) for r in records)
    classes = ','.join(resolve_classes(args.format, args.classes))
    print(f'wrote {len(records)} images with {num_objects} objects '
          f'({classes}) to {out}')


if __name__ == '__main__':
    main()
