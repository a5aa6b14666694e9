"""Model-zoo releases of distilled students (student weights, config,
metafile) and the model index ``model-index.yml`` (``docs/sweeps.md``,
section 5)."""
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

from mmrskd.engine.work_dir import last_checkpoint, read_run_log
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
    best = glob.glob(osp.join(work_dir, 'best_*.pth'))
    found = dict(last=last_checkpoint(work_dir),
                 best=best[0] if len(best) == 1 else None).get(
                     which, which if osp.isfile(which) else None)
    if found is None:
        raise MMRSKDError(f'--checkpoint {which}: no such checkpoint in '
                          f'{work_dir} (best needs one best_*.pth from '
                          'default_hooks.checkpoint.save_best); train first, '
                          'or pass another of last, best or a path')
    return found


def student_config(cfg) -> Config:
    """A plain detector config of what ``cfg`` deploys: the student as
    ``model``, ``DistillValLoop`` → ``ValLoop``, no ``load_from``,
    ``resume``, ``work_dir`` or ``launcher``; data, evaluator, schedule and
    hooks as trained, so it tests the student as the run validated it."""
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
    head = Path(log_file).read_text(errors='replace')[:20000] \
        if log_file else ''
    env = dict(re.findall(r'(CUDA available|GPU number): (\S+)', head))
    procs = env.get('GPU number', '1')
    loader, train_cfg = cfg.get('train_dataloader', {}), cfg.get(
        'train_cfg', {})
    dataset = loader.get('dataset', {})
    while 'type' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    losses = {str(loss.get('type')).split('.')[-1]
              for loss in cfg.model.get('distill_losses', {}).values()}
    optimizer = str(cfg.get('optim_wrapper', {}).get('optimizer', {}).get(
        'type', '')).split('.')[-1]
    metadata = {
        'Training Data': re.sub(r'Dataset$', '', str(dataset.get(
            'type', 'unknown')).split('.')[-1]),
        'Training Techniques': [t for t in (
            optimizer, 'Knowledge Distillation', *sorted(losses)) if t],
        'Training Resources': f'{procs}x ' + (
            'GPUs' if env.get('CUDA available') == 'True' else 'CPU')}
    for key, field in (('max_epochs', 'Epochs'), ('max_iters', 'Iterations')):
        if train_cfg.get(key):
            metadata[field] = train_cfg[key]
    if loader.get('batch_size'):
        metadata['Batch Size'] = loader['batch_size'] * int(procs)
    metadata.update({'Parameters': complexity['params'],
                     'FLOPs': complexity['flops'],
                     'Input Shape': list(complexity['input_shape']),
                     'Student': dict(Config=_source_ref(cfg.model.student)),
                     'Teacher': dict(Config=_source_ref(cfg.model.teacher))})
    if cfg.model.get('teacher_ckpt'):
        metadata['Teacher']['Weights'] = cfg.model.teacher_ckpt
    if teacher_metrics:
        metadata['Teacher']['Metrics'] = _points(teacher_metrics)
    evaluator = cfg.get('test_evaluator') or cfg.get('val_evaluator') or {}
    evaluator = evaluator[0] if isinstance(evaluator, list) else evaluator
    rotated = evaluator.get('box_type', 'rbox' if re.search(
        'DOTA|HRSC|rotate', str(evaluator.get('type'))) else 'hbox') in (
            'rbox', 'qbox')
    return dict(Name=name, **{'In Collection': collection} if collection
                else {}, Config=released_config, Metadata=metadata,
                Results=[dict(Task=('Oriented ' if rotated else '') +
                              'Object Detection',
                              Dataset=metadata['Training Data'],
                              Metrics=_points(metrics))], Weights=weights)


def update_metafile(path: str, entry: dict):
    """Insert ``entry`` into the ``Models`` of a metafile, replacing the
    entry of the same ``Name`` (comments in the file are not kept)."""
    data = yaml.safe_load(Path(path).read_text()) if osp.isfile(
        path) else None
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
    """Release the run of ``src`` (a work dir, or a checkpoint file in one)
    to ``out_dir``: ``<name>-<sha256[:8]>.pth`` (student weights and meta),
    ``<name>.py`` (:func:`student_config`), the logs and
    ``<name>.metafile.yml`` (also inserted into ``metafile``). ``config``
    defaults to the one mmengine dumped into the work dir, ``name`` to its
    stem, ``input_shape`` (H, W) for the FLOPs to the test Resize scale;
    ``weights_url`` prefixes the weights in the metafile. Returns the
    written paths, the ``metrics`` and ``step`` (``('epoch' | 'iter',
    value)``) of the released checkpoint and the metafile ``entry``."""
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
    shape = input_shape or test_input_shape(cfg)
    if shape is None:
        raise MMRSKDError(f'{cfg_path}: no Resize scale in the test pipeline '
                          'to count FLOPs at; pass --shape H W')
    name = name or osp.splitext(osp.basename(cfg_path))[0]
    os.makedirs(out_dir, exist_ok=True)
    raw = safe_load(ckpt_path)
    partial = osp.join(out_dir, f'{name}.pth.partial')
    atomic_save(student_checkpoint(raw), partial)
    with open(partial, 'rb') as f:
        sha = hashlib.file_digest(f, 'sha256').hexdigest()
    weights = osp.join(out_dir, f'{name}-{sha[:8]}.pth')
    os.replace(partial, weights)
    released_cfg = student_config(cfg)
    released_config = osp.join(out_dir, f'{name}.py')
    released_cfg.dump(released_config)

    log = read_run_log(work_dir)
    # <stamp>/<stamp>.log → <name>_<stamp>.log, and
    # <stamp>/vis_data/scalars.json → <name>_<stamp>.log.json
    logs = [shutil.copyfile(source, osp.join(out_dir, '{}_{}{}'.format(
        name, osp.relpath(source, work_dir).split(os.sep)[0],
        '.log' if source.endswith('.log') else '.log.json')))
        for source in log.log_files + log.scalar_files]
    # metrics are logged by epoch, or by iteration for iteration loops
    loop = cfg.get('train_cfg') or {}
    by_epoch = loop.get('by_epoch', 'Iter' not in str(loop.get('type', '')))
    logger = (cfg.get('default_hooks') or {}).get('logger') or {}
    step_key = 'epoch' if by_epoch and logger.get('log_metric_by_epoch',
                                                  True) else 'iter'
    step = raw.get('meta', {}).get(step_key)
    metrics = dict(log.val.get(step, {}))
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    weights_ref = osp.basename(weights)
    if weights_url:
        weights_ref = weights_url.rstrip('/') + '/' + weights_ref
    entry = metafile_entry(
        cfg, name, weights_ref, osp.basename(released_config), metrics,
        log.teacher[max(log.teacher)] if log.teacher else {},
        model_complexity(released_cfg.model, shape), collection,
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
