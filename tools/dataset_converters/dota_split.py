"""Split DOTA-style images into patches for training and testing.

Examples::

    # single scale, as mmrotate's ss_trainval.json
    python tools/dataset_converters/dota_split.py --preset ss \
        --img-dirs data/DOTA/train/images data/DOTA/val/images \
        --ann-dirs data/DOTA/train/labelTxt data/DOTA/val/labelTxt \
        --out-dir data/split_ss_dota/trainval --nproc 8
    # multi scale test set (no labels)
    python tools/dataset_converters/dota_split.py --preset ms \
        --img-dirs data/DOTA/test/images --out-dir data/split_ms_dota/test

Patches are named ``P0000__1024__0___0``; evaluate on full images with
``RSDetMetric(merge_patches=True, merged_ann_dir=...)``.
"""
import argparse

from mmrskd.datasets.dota_split import (DEFAULT_PADDING_VALUE, SPLIT_PRESETS,
                                        split_dota)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.cli import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Split large images (and DOTA labelTxt) into patches')
    parser.add_argument('--img-dirs', nargs='+', required=True,
                        help='folders of full images')
    parser.add_argument('--ann-dirs', nargs='+',
                        help='raw labelTxt folder of each image folder; omit '
                        'for an unlabelled test set')
    parser.add_argument('--out-dir', required=True,
                        help='new folder; gets images/ and annfiles/')
    parser.add_argument('--preset', choices=sorted(SPLIT_PRESETS),
                        default='ss',
                        help='ss: 1024/200 at rate 1; ms: 1024/500 at rates '
                        '0.5, 1.0, 1.5 (overridden by --sizes/--gaps/--rates)')
    parser.add_argument('--sizes', nargs='+', type=int,
                        help='patch sizes at rate 1')
    parser.add_argument('--gaps', nargs='+', type=int,
                        help='overlap of neighbouring patches, one per size')
    parser.add_argument('--rates', nargs='+', type=float,
                        help='a window covers size/rate image pixels')
    parser.add_argument('--img-rate-thr', type=float, default=0.6,
                        help='drop windows whose image part is not more than '
                        'this fraction of them')
    parser.add_argument('--iof-thr', type=float, default=0.7,
                        help='keep objects with at least this much of their '
                        'area in the window')
    parser.add_argument('--padding-value', nargs='+', type=int,
                        default=list(DEFAULT_PADDING_VALUE),
                        help='BGR fill of border patches (1 or 3 values)')
    parser.add_argument('--no-padding', action='store_true',
                        help='keep border patches smaller than the window')
    parser.add_argument('--ext', default='.png',
                        choices=['.png', '.jpg', '.bmp', '.tif'],
                        help='patch image extension')
    parser.add_argument('--skip-invalid', action='store_true',
                        help='skip malformed label lines with a warning '
                        'instead of stopping')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    preset = SPLIT_PRESETS[args.preset]
    sizes = args.sizes or preset['sizes']
    gaps = args.gaps or preset['gaps']
    rates = args.rates or preset['rates']
    if len(args.padding_value) not in (1, 3):
        raise MMRSKDError('--padding-value takes 1 or 3 (B G R) values, got '
                          f'{len(args.padding_value)}')
    if not 0 <= args.iof_thr <= 1:
        raise MMRSKDError(f'--iof-thr {args.iof_thr} must lie in [0, 1]')
    images, patches, objects = split_dota(
        args.img_dirs,
        args.out_dir,
        ann_dirs=args.ann_dirs,
        sizes=sizes,
        gaps=gaps,
        rates=rates,
        img_rate_thr=args.img_rate_thr,
        iof_thr=args.iof_thr,
        padding_value=args.padding_value,
        no_padding=args.no_padding,
        img_ext=args.ext,
        on_invalid='skip' if args.skip_invalid else 'raise',
        nproc=args.nproc)
    print(f'\nsplit {images} images ({objects} objects) into {patches} '
          f'patches in {args.out_dir}')


if __name__ == '__main__':
    main()
