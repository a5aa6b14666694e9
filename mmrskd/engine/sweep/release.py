"""Model-zoo releases of trained students and the model index (see
``docs/sweeps.md``, section 5).

From a work dir (or a checkpoint and its config) :func:`publish` writes
``<name>-<sha256[:8]>.pth`` (the student's weights and meta only),
``<name>.py`` (a self-contained plain detector config, so ``tools/test.py``
runs on the released files alone), the training logs and
``<name>.metafile.yml`` (a model-index entry). :func:`write_model_index`
lists the ``configs/*/metafile.yml`` files in ``model-index.yml``.
"""
import glob
import hashlib
import os
import os.path as osp
import re
import shutil
from pathlib import Path
from typing import Optional, Tuple

import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmrskd.engine.sweep.executor import last_checkpoint
from mmrskd.engine.sweep.results import read_run_log
from mmrskd.models.utils.complexity import (deployed_model_cfg,
                                            model_complexity, test_input_shape)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import (atomic_save, safe_load,
                                     student_checkpoint)
from mmrskd.utils.config import load_config

MODEL_INDEX_HEADER = (
    '# The model index of mmrskd (OpenMMLab format), written by\n'
    '#   python tools/gen_results_tables.py --model-index\n'
    '# from the configs/*/metafile.yml files; do not edit by hand.\n')


def find_checkpoint(work_dir: str, which: str = 'last') -> str:
    """``'last'`` (mmengine's ``last_checkpoint``), ``'best'`` (the one
    ``best_*.pth``) or a path."""
    if which == 'last':
        found = last_checkpoint(work_dir)
    elif which == 'best':
        best = glob.glob(osp.join(work_dir, 'best_*.pth'))
        found = best[0] if len(best) == 1 else None
    else:
        found = which if osp.isfile(which) else None
    if found is None:
        raise MMRSKDError(f'--checkpoint {which}: no such checkpoint in '
                          f'{work_dir} (best needs one best_*.pth from '
                          'default_hooks.checkpoint.save_best); train first, '
                          'or pass another of last, best or a path')
    return found


def student_config(cfg) -> Config:
    """A plain detector config for what ``cfg`` deploys: the distiller's
    ``model.student`` resolved to a model dict, ``DistillValLoop`` →
    ``ValLoop``, ``load_from``/``resume`` reset, no ``work_dir`` or
    ``launcher``. Data, evaluator, schedule and hooks stay as trained, so
    the released config tests the student the way the run validated it."""
    released = cfg.to_dict()
    released['model'] = deployed_model_cfg(cfg).to_dict()
    for key in ('val_cfg', 'test_cfg'):
        loop = released.get(key)
        if isinstance(loop, dict) and loop.get('type') == 'DistillValLoop':
            released[key] = dict(type='ValLoop', **{
                k: v for k, v in loop.items() if k == 'fp16'})
    for key in ('work_dir', 'launcher'):
        released.pop(key, None)
    return Config(dict(released, load_from=None, resume=False))


def save_with_sha(obj: dict, out_dir: str, name: str) -> str:
    """Save ``obj`` as ``<out_dir>/<name>-<sha256[:8]>.pth``, the sha of the
    file itself, as OpenMMLab's ``publish_model.py`` names it."""
    tmp = osp.join(out_dir, f'{name}.pth.partial')
    atomic_save(obj, tmp)
    with open(tmp, 'rb') as f:
        sha = hashlib.file_digest(f, 'sha256').hexdigest()
    final = osp.join(out_dir, f'{name}-{sha[:8]}.pth')
    os.replace(tmp, final)
    return final


def _released_step(cfg, checkpoint: dict) -> Tuple[str, Optional[int]]:
    """The validation step of the released checkpoint: its epoch, or its
    iteration for iteration-based loops (as LoggerHook logs metrics)."""
    loop = cfg.get('train_cfg') or {}
    by_epoch = loop.get('by_epoch', 'Iter' not in str(loop.get('type', '')))
    logger = (cfg.get('default_hooks') or {}).get('logger') or {}
    key = 'epoch' if by_epoch and logger.get('log_metric_by_epoch',
                                             True) else 'iter'
    return key, checkpoint.get('meta', {}).get(key)


def _source_ref(spec) -> Optional[str]:
    """A config reference for the metafile: the path, or the model type."""
    if isinstance(spec, dict):
        return spec.get('cfg_path', f'model dict ({spec.get("type")})')
    return spec if isinstance(spec, str) else None


def _points(metrics: dict) -> dict:
    """×100, two decimals, without the evaluator prefix (``dota/mAP`` →
    ``mAP``), as OpenMMLab metafiles give metrics."""
    return {k.split('/', 1)[-1]: round(100 * v, 2) for k, v in metrics.items()}


def metafile_entry(cfg, name: str, weights: str, released_config: str,
                   metrics: dict, teacher_metrics: dict, complexity: dict,
                   collection: Optional[str] = None,
                   log_file: Optional[str] = None) -> dict:
    """A model-index ``Models`` entry (mmdet/mmrazor fields); the process
    count and device come from the header of mmengine's ``log_file``."""
    train_cfg = cfg.get('train_cfg', {})
    loader = cfg.get('train_dataloader', {})
    techniques = [str(cfg.get('optim_wrapper', {}).get('optimizer', {}).get(
        'type', '')).split('.')[-1], 'Knowledge Distillation'] + sorted({
            str(loss.get('type')).split('.')[-1]
            for loss in cfg.model.get('distill_losses', {}).values()})
    head = ''
    if log_file:
        with open(log_file, errors='replace') as f:
            head = f.read(20000)
    env = dict(re.findall(r'(CUDA available|GPU number): (\S+)', head))
    procs = env.get('GPU number', '1')
    dataset = loader.get('dataset', {})
    while 'type' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    metadata = {
        'Training Data': re.sub(r'Dataset$', '', str(dataset.get(
            'type', 'unknown')).split('.')[-1]),
        'Training Techniques': [t for t in techniques if t],
        'Training Resources': f'{procs}x ' + (
            'GPUs' if env.get('CUDA available') == 'True' else 'CPU')}
    for key, field in (('max_epochs', 'Epochs'), ('max_iters', 'Iterations')):
        if train_cfg.get(key):
            metadata[field] = train_cfg[key]
    if loader.get('batch_size'):
        metadata['Batch Size'] = loader['batch_size'] * int(procs)
    metadata.update({'Parameters': complexity['params'],
                     'FLOPs': complexity['flops'],
                     'Input Shape': list(complexity['input_shape'])})
    metadata['Student'] = dict(Config=_source_ref(cfg.model.student))
    teacher = metadata['Teacher'] = dict(
        Config=_source_ref(cfg.model.teacher))
    if cfg.model.get('teacher_ckpt'):
        teacher['Weights'] = cfg.model.teacher_ckpt
    if teacher_metrics:
        teacher['Metrics'] = _points(teacher_metrics)
    evaluator = cfg.get('test_evaluator') or cfg.get('val_evaluator') or {}
    if isinstance(evaluator, list):
        evaluator = evaluator[0] if evaluator else {}
    rotated = evaluator.get('box_type', 'rbox' if any(
        s in str(evaluator.get('type', '')) for s in ('DOTA', 'HRSC',
                                                     'rotate')) else 'hbox'
                            ) in ('rbox', 'qbox')
    entry = dict(Name=name)
    if collection:
        entry['In Collection'] = collection
    entry.update(Config=released_config, Metadata=metadata, Results=[dict(
        Task=('Oriented ' if rotated else '') + 'Object Detection',
        Dataset=metadata['Training Data'], Metrics=_points(metrics))],
        Weights=weights)
    return entry


def update_metafile(path: str, entry: dict):
    """Insert ``entry`` into the ``Models`` of a metafile, replacing the
    entry of the same ``Name`` (comments in the file are not kept)."""
    data = yaml.safe_load(Path(path).read_text()) if osp.isfile(path) else {}
    data = data or {}
    data['Models'] = [m for m in data.get('Models', [])
                      if m.get('Name') != entry['Name']] + [entry]
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False,
                                         allow_unicode=True))


def publish(src: str, out_dir: str, config: Optional[str] = None,
            checkpoint: str = 'last', name: Optional[str] = None,
            input_shape: Optional[Tuple[int, int]] = None,
            weights_url: Optional[str] = None,
            collection: Optional[str] = None,
            metafile: Optional[str] = None) -> dict:
    """Write a release of the run in ``src`` to ``out_dir``.

    Args:
        src (str): a work dir, or a checkpoint file (its folder is taken as
            the work dir for the config and the logs).
        out_dir (str): where the release goes.
        config (str, optional): the training config; default: the one
            mmengine dumped into the work dir.
        checkpoint (str): see :func:`find_checkpoint` (with a work dir).
        name (str, optional): release name; default: the config's stem.
        input_shape (tuple[int, int], optional): ``(H, W)`` for the FLOPs;
            default: the test pipeline's Resize scale.
        weights_url (str, optional): URL prefix of the weights in the
            metafile; default: the file name.
        collection (str, optional): the metafile's ``In Collection``.
        metafile (str, optional): also insert the entry into this metafile.

    Returns:
        dict: paths (``checkpoint``, ``config``, ``logs``, ``metafile``),
        ``metrics`` (raw values at the released checkpoint), ``step``
        (``('epoch' or 'iter', value)``) and ``entry``.
    """
    if osp.isfile(src):
        work_dir, ckpt_path = osp.dirname(osp.abspath(src)), src
    elif osp.isdir(src):
        work_dir, ckpt_path = src, find_checkpoint(src, checkpoint)
    else:
        raise MMRSKDError(f'{src}: neither a work dir nor a checkpoint file')
    dumped = glob.glob(osp.join(work_dir, '*.py'))
    if config is None and len(dumped) != 1:
        raise MMRSKDError(
            f'{work_dir}: expected the one config mmengine dumps there, '
            f'found {len(dumped)}; pass --config')
    cfg_path = config or dumped[0]
    cfg = load_config(cfg_path, where='--config')
    if not {'student', 'teacher'} <= set(cfg.model):
        raise MMRSKDError(f'{cfg_path}: not a distiller config (no '
                          'model.student/teacher); only distilled students '
                          'are released')
    name = name or osp.splitext(osp.basename(cfg_path))[0]
    os.makedirs(out_dir, exist_ok=True)
    raw = safe_load(ckpt_path)
    weights = save_with_sha(student_checkpoint(raw), out_dir, name)
    released_cfg = student_config(cfg)
    released_config = osp.join(out_dir, f'{name}.py')
    released_cfg.dump(released_config)

    log = read_run_log(work_dir)
    logs = []
    for source in log.log_files + log.scalar_files:
        # <stamp>/<stamp>.log, <stamp>/vis_data/scalars.json
        stamp = osp.relpath(source, work_dir).split(os.sep)[0]
        suffix = '.log' if source.endswith('.log') else '.log.json'
        logs.append(shutil.copyfile(
            source, osp.join(out_dir, f'{name}_{stamp}{suffix}')))
    step_key, step = _released_step(cfg, raw)
    metrics = dict(log.val.get(step, {}))
    teacher_metrics = log.teacher[max(log.teacher)] if log.teacher else {}
    shape = input_shape or test_input_shape(cfg)
    if shape is None:
        raise MMRSKDError(f'{cfg_path}: no Resize scale in the test pipeline '
                          'to count FLOPs at; pass --shape H W')
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    complexity = model_complexity(released_cfg.model, shape)
    weights_ref = osp.basename(weights)
    if weights_url:
        weights_ref = weights_url.rstrip('/') + '/' + weights_ref
    entry = metafile_entry(
        cfg, name, weights_ref, osp.basename(released_config), metrics,
        teacher_metrics, complexity, collection,
        log.log_files[0] if log.log_files else None)
    entry_path = osp.join(out_dir, f'{name}.metafile.yml')
    Path(entry_path).write_text(yaml.safe_dump(dict(Models=[entry]),
                                               sort_keys=False))
    if metafile:
        update_metafile(metafile, entry)
    return dict(checkpoint=weights, config=released_config, logs=logs,
                metafile=entry_path, metrics=metrics, step=(step_key, step),
                entry=entry)


def model_index_text(root: str) -> str:
    """``model-index.yml``: an ``Import`` list of the
    ``configs/*/metafile.yml`` below ``root``, each checked to be a
    metafile that model-index readers (mim) can use."""
    files = sorted(osp.relpath(p, root) for p in glob.glob(
        osp.join(root, 'configs', '*', 'metafile.yml')))
    for path in files:
        try:
            data = yaml.safe_load(Path(root, path).read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, 'problem_mark', None)
            line = f':{mark.line + 1}' if mark else ''
            raise MMRSKDError(f'{osp.join(root, path)}{line}: not valid YAML '
                              f'({getattr(err, "problem", err)}); fix it '
                              'before indexing') from None
        if not isinstance(data, dict) or not {'Models', 'Collections'} & set(
                data):
            raise MMRSKDError(f'{path}: a metafile needs a Collections and/or'
                              ' Models list (OpenMMLab model-index format)')
    return MODEL_INDEX_HEADER + yaml.safe_dump(dict(Import=files),
                                               sort_keys=False)


def write_model_index(root: str, check: bool = False) -> bool:
    """Rewrite ``<root>/model-index.yml`` (with ``check``, only compare);
    whether it changed (or would change)."""
    path, text = Path(root, 'model-index.yml'), model_index_text(root)
    changed = not path.is_file() or path.read_text() != text
    if changed and not check:
        path.write_text(text)
    return changed
