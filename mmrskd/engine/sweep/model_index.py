"""``model-index.yml``: the OpenMMLab model index, an ``Import`` list of the
per-method ``configs/<method>/metafile.yml`` files."""
import glob
import os.path as osp
from typing import List

from mmrskd.utils import MMRSKDError

HEADER = ('# The model index of mmrskd (OpenMMLab format), written by\n'
          '#   python tools/gen_results_tables.py --model-index\n'
          '# from the configs/*/metafile.yml files; do not edit by hand.\n')


def metafiles(root: str) -> List[str]:
    """``configs/*/metafile.yml`` below ``root``, relative and sorted."""
    return sorted(osp.relpath(p, root) for p in glob.glob(
        osp.join(root, 'configs', '*', 'metafile.yml')))


def check_metafile(path: str):
    """Refuse a metafile that model-index readers (mim) cannot use."""
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        line = f':{mark.line + 1}' if mark else ''
        raise MMRSKDError(f'{path}{line}: not valid YAML '
                          f'({getattr(err, "problem", err)}); fix it before '
                          'indexing') from None
    if not isinstance(data, dict) or not ({'Models', 'Collections'} &
                                          set(data)):
        raise MMRSKDError(f'{path}: a metafile needs a Collections and/or '
                          'Models list (OpenMMLab model-index format)')


def model_index_text(root: str) -> str:
    import yaml
    files = metafiles(root)
    for path in files:
        check_metafile(osp.join(root, path))
    body = yaml.safe_dump(dict(Import=files), sort_keys=False)
    return HEADER + body


def write_model_index(root: str, check: bool = False) -> bool:
    """Rewrite ``<root>/model-index.yml``; with ``check`` only compare.

    Returns:
        bool: whether the file changed (or would change).
    """
    path = osp.join(root, 'model-index.yml')
    text = model_index_text(root)
    old = open(path).read() if osp.isfile(path) else None
    if old != text and not check:
        with open(path, 'w') as f:
            f.write(text)
    return old != text
