"""Record what every shipped config resolves to: the golden file of
``tests/test_config_fingerprints.py``.

For each config: structure hashes of the model and its losses on a fixed
seeded batch (:mod:`mmrskd.testing.config_fingerprint`). Regenerate only on
a deliberate behaviour change (or for a new config), and say why in the
commit::

    python tools/misc/config_fingerprints.py              # every config
    python tools/misc/config_fingerprints.py configs/ltd/ltd_x.py  # one
"""
import argparse
import json
import os.path as osp
import subprocess

import torch

from mmrskd.testing.config_fingerprint import (REPO, config_fingerprint,
                                               shipped_configs)
from mmrskd.utils import register_all_modules

GOLDEN = osp.join(REPO, 'tests', 'data', 'config_fingerprints.json')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the config fingerprints golden file.')
    parser.add_argument(
        'configs', nargs='*',
        help='update only these entries (paths relative to the repository '
        'root); default: all shipped configs, stale entries dropped')
    parser.add_argument('--out', default=GOLDEN)
    parser.add_argument('--size', type=int, default=128,
                        help='side of the synthetic images, px')
    return parser.parse_args(argv)


def _commit():
    head = subprocess.run(['git', 'rev-parse', '--short=10', 'HEAD'],
                          cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(['git', 'status', '--porcelain', '-uno', 'mmrskd',
                            'configs'], cwd=REPO, capture_output=True,
                           text=True)
    return head.stdout.strip() + (' (with uncommitted changes)'
                                  if dirty.stdout.strip() else '')


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    torch.set_num_threads(1)  # the test's threads: same reductions
    shipped = shipped_configs()
    golden = dict(configs={})
    if args.configs and osp.isfile(args.out):
        with open(args.out) as f:
            golden = json.load(f)
    entries = golden['configs']
    for path in args.configs or shipped:
        entries[path] = config_fingerprint(path, size=args.size)
        print(f'{path}: {len(entries[path]["losses"])} losses', flush=True)
    golden = dict(
        about=dict(
            generated_on=_commit(),
            regenerate='python tools/misc/config_fingerprints.py [CONFIG '
            '...], only on a deliberate behaviour change; see '
            'tests/test_config_fingerprints.py'),
        configs={path: entries[path] for path in sorted(entries)
                 if path in shipped})
    with open(args.out, 'w') as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
