"""Release a trained (distilled) student, OpenMMLab model-zoo style.

From a work dir (or a checkpoint and its config) :func:`publish` writes:

* ``<name>-<sha256[:8]>.pth``: the student's weights and dataset meta only
  (no teacher, connectors, distillation-loss modules, schedule states,
  optimizer or message hub); the suffix is the sha256 of that file;
* ``<name>.py``: a self-contained plain detector config (``_base_``
  resolved; the distiller's ``model.student`` as ``model``; distillation
  loops replaced by mmengine's), so ``tools/test.py <name>.py <name>-*.pth``
  runs on the released files alone;
* ``<name>_<timestamp>.log`` / ``.log.json``: the training logs;
* ``<name>.metafile.yml``: a model-index entry with the metrics at the
  released checkpoint, params, FLOPs, teacher and training schedule.
"""
import copy
import glob
import hashlib
import os
import os.path as osp
import re
import shutil
from typing import Optional, Tuple

from mmrskd.engine.sweep.logs import read_run_log
from mmrskd.models.utils.complexity import (deployed_model_cfg,
                                            model_complexity, test_input_shape)
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import atomic_save, safe_load, student_checkpoint
from mmrskd.utils.config import load_config

# checkpoint meta worth keeping in a release
RELEASE_META = ('dataset_meta', 'epoch', 'iter', 'seed', 'experiment_name',
                'mmengine_version')
# loops of the distiller and their plain mmengine counterparts
PLAIN_LOOPS = dict(DistillValLoop='ValLoop')
TASKS = dict(rbox='Oriented Object Detection', qbox='Oriented Object '
             'Detection', hbox='Object Detection')


def sha256sum(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoint(work_dir: str, which: str = 'last') -> str:
    """``'last'`` (mmengine's ``last_checkpoint``), ``'best'`` (the
    ``best_*.pth`` the CheckpointHook kept) or a path."""
    if which not in ('last', 'best'):
        if not osp.isfile(which):
            raise MMRSKDError(f'--checkpoint {which}: file not found')
        return which
    if which == 'best':
        best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
        if len(best) != 1:
            raise MMRSKDError(
                f'{work_dir}: expected one best_*.pth, found {len(best)} '
                '(set default_hooks.checkpoint.save_best, or pass '
                '--checkpoint last or a path)')
        return best[0]
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
        local = osp.join(work_dir, osp.basename(path))
        if osp.isfile(local):  # the work dir was moved
            return local
    checkpoints = glob.glob(osp.join(work_dir, '*.pth'))
    if not checkpoints:
        raise MMRSKDError(f'{work_dir}: no checkpoint (no last_checkpoint '
                          'and no *.pth); train first or pass a checkpoint')
    return max(checkpoints, key=osp.getmtime)


def find_config(work_dir: str) -> str:
    """The config mmengine dumped into ``work_dir``."""
    configs = [p for p in glob.glob(osp.join(work_dir, '*.py'))]
    if len(configs) != 1:
        raise MMRSKDError(
            f'{work_dir}: expected the one config mmengine dumps there, '
            f'found {len(configs)}; pass --config')
    return configs[0]


def is_distiller_cfg(cfg) -> bool:
    return 'student' in cfg.model and 'teacher' in cfg.model


def student_config(cfg):
    """A plain detector config for the student of a distiller config.

    The student model is resolved from ``model.student`` (a path, a model
    dict or ``dict(cfg_path=..., **overrides)``); ``DistillValLoop`` becomes
    ``ValLoop``; run-specific keys (``work_dir``, ``launcher``,
    ``load_from``, ``resume``) are reset. Data, evaluator, schedule and hooks
    stay as trained, so the released config tests (and fine-tunes) the
    student the way the run validated it.

    Args:
        cfg (Config): a distiller or detector config.

    Returns:
        Config: the detector config.
    """
    from mmengine.config import Config
    released = copy.deepcopy(cfg.to_dict())
    released['model'] = deployed_model_cfg(cfg).to_dict()
    for key in ('val_cfg', 'test_cfg'):
        loop = released.get(key)
        if isinstance(loop, dict) and loop.get('type') in PLAIN_LOOPS:
            released[key] = dict(type=PLAIN_LOOPS[loop['type']],
                                 **{k: v for k, v in loop.items()
                                    if k in ('fp16', )})
    for key in ('work_dir', 'launcher'):
        released.pop(key, None)
    released['load_from'] = None
    released['resume'] = False
    return Config(released)


def release_checkpoint(checkpoint: dict, distiller: bool) -> dict:
    """The weights to release: the student's (or the detector's) state dict
    and the meta in :data:`RELEASE_META`."""
    if distiller:
        return student_checkpoint(checkpoint)
    if 'state_dict' not in checkpoint:
        raise MMRSKDError('the checkpoint has no state_dict')
    return dict(state_dict=checkpoint['state_dict'],
                meta={k: v for k, v in checkpoint.get('meta', {}).items()
                      if k in RELEASE_META})


def save_with_sha(obj: dict, out_dir: str, name: str) -> str:
    """Save ``obj`` as ``<out_dir>/<name>-<sha256[:8]>.pth`` (the sha of the
    file itself) and return the path."""
    tmp = osp.join(out_dir, f'{name}.pth.partial')
    atomic_save(obj, tmp)
    final = osp.join(out_dir, f'{name}-{sha256sum(tmp)[:8]}.pth')
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


def _metric_name(key: str) -> str:
    return key.split('/', 1)[-1]


def _environment(log_file: Optional[str]) -> dict:
    """Launcher and process count from mmengine's log header."""
    found = {}
    if log_file:
        with open(log_file, errors='replace') as f:
            head = f.read(20000)
        for field in ('CUDA available', 'GPU number', 'Distributed launcher'):
            match = re.search(rf'{field}: (\S+)', head)
            if match:
                found[field] = match.group(1)
    return found


def _source_ref(spec):
    """A config reference for the metafile: the path, or the model type."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and 'cfg_path' in spec:
        return spec['cfg_path']
    if isinstance(spec, dict):
        return f'model dict ({spec.get("type")})'
    return None


def metafile_entry(cfg, name: str, weights: str, released_config: str,
                   metrics: dict, teacher_metrics: dict, complexity: dict,
                   collection: Optional[str] = None,
                   log_file: Optional[str] = None,
                   source_config: Optional[str] = None) -> dict:
    """A model-index ``Models`` entry (mmdet/mmrazor fields).

    Metric values are ×100 and rounded to two decimals, as in OpenMMLab
    metafiles; metric names lose their evaluator prefix (``dota/mAP`` →
    ``mAP``).
    """
    train_cfg = cfg.get('train_cfg', {})
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {})
    techniques = [str(optimizer.get('type', '')).split('.')[-1]]
    metadata = {}
    if is_distiller_cfg(cfg):
        techniques.append('Knowledge Distillation')
        techniques += sorted({str(loss.get('type')).split('.')[-1]
                              for loss in cfg.model.get(
                                  'distill_losses', {}).values()})
    env = _environment(log_file)
    procs = env.get('GPU number', '1')
    device = 'GPUs' if env.get('CUDA available') == 'True' else 'CPU'
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    while 'type' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    metadata['Training Data'] = re.sub(
        r'Dataset$', '', str(dataset.get('type', 'unknown')).split('.')[-1])
    metadata['Training Techniques'] = [t for t in techniques if t]
    metadata['Training Resources'] = f'{procs}x {device}'
    if train_cfg.get('max_epochs'):
        metadata['Epochs'] = train_cfg['max_epochs']
    if train_cfg.get('max_iters'):
        metadata['Iterations'] = train_cfg['max_iters']
    batch = cfg.get('train_dataloader', {}).get('batch_size')
    if batch:
        metadata['Batch Size'] = batch * int(procs)
    metadata['Parameters'] = complexity['params']
    metadata['FLOPs'] = complexity['flops']
    metadata['Input Shape'] = list(complexity['input_shape'])
    if is_distiller_cfg(cfg):
        metadata['Student'] = dict(Config=_source_ref(cfg.model.student))
        teacher = dict(Config=_source_ref(cfg.model.teacher))
        if cfg.model.get('teacher_ckpt'):
            teacher['Weights'] = cfg.model.teacher_ckpt
        if teacher_metrics:
            teacher['Metrics'] = {_metric_name(k): round(100 * v, 2)
                                  for k, v in teacher_metrics.items()}
        metadata['Teacher'] = teacher
    if source_config:
        metadata['Training Config'] = source_config

    evaluator = cfg.get('test_evaluator') or cfg.get('val_evaluator') or {}
    if isinstance(evaluator, list):
        evaluator = evaluator[0] if evaluator else {}
    box_type = evaluator.get('box_type', 'rbox' if any(
        s in str(evaluator.get('type', '')) for s in ('DOTA', 'HRSC',
                                                     'rotate')) else 'hbox')
    entry = dict(Name=name)
    if collection:
        entry['In Collection'] = collection
    entry['Config'] = released_config
    entry['Metadata'] = metadata
    entry['Results'] = [dict(
        Task=TASKS.get(box_type, 'Object Detection'),
        Dataset=metadata['Training Data'],
        Metrics={_metric_name(k): round(100 * v, 2)
                 for k, v in metrics.items()})]
    entry['Weights'] = weights
    return entry


def update_metafile(path: str, entry: dict):
    """Insert ``entry`` into the ``Models`` of a metafile, replacing the
    entry of the same ``Name`` (comments in the file are not kept)."""
    import yaml
    data = {}
    if osp.isfile(path):
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    models = [m for m in data.get('Models', [])
              if m.get('Name') != entry['Name']]
    data['Models'] = models + [entry]
    with open(path, 'w') as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)


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
        checkpoint (str): ``'last'``, ``'best'`` or a path (with a work dir).
        name (str, optional): release name; default: the config's stem.
        input_shape (tuple[int, int], optional): ``(H, W)`` for the FLOPs;
            default: the test pipeline's Resize scale.
        weights_url (str, optional): URL prefix of the weights in the
            metafile; default: the file name.
        collection (str, optional): the metafile's ``In Collection``.
        metafile (str, optional): also insert the entry into this metafile.

    Returns:
        dict: paths (``checkpoint``, ``config``, ``logs``, ``metafile``),
        ``metrics`` (raw values at the released checkpoint) and ``entry``.
    """
    if osp.isfile(src):
        work_dir, ckpt_path = osp.dirname(osp.abspath(src)), src
    elif osp.isdir(src):
        work_dir, ckpt_path = src, find_checkpoint(src, checkpoint)
    else:
        raise MMRSKDError(f'{src}: neither a work dir nor a checkpoint file')
    source_config = config  # None: the config dumped into the work dir
    config = config or find_config(work_dir)
    cfg = load_config(config, where='--config')
    name = name or osp.splitext(osp.basename(config))[0]
    os.makedirs(out_dir, exist_ok=True)

    raw = safe_load(ckpt_path)
    distiller = is_distiller_cfg(cfg)
    weights = save_with_sha(release_checkpoint(raw, distiller), out_dir, name)

    released_cfg = student_config(cfg)
    released_config = osp.join(out_dir, f'{name}.py')
    released_cfg.dump(released_config)

    log = read_run_log(work_dir)
    logs = []
    for source in log.log_files + log.scalar_files:
        # <stamp>/<stamp>.log, <stamp>/vis_data/scalars.json
        stamp = osp.relpath(source, work_dir).split(os.sep)[0]
        suffix = '.log' if source.endswith('.log') else '.log.json'
        target = osp.join(out_dir, f'{name}_{stamp}{suffix}')
        shutil.copyfile(source, target)
        logs.append(target)

    step_key, step = _released_step(cfg, raw)
    metrics = dict(log.val.get(step, {})) if step is not None else {}
    teacher_metrics = dict(log.teacher[max(log.teacher)]) \
        if log.teacher else {}
    shape = input_shape or test_input_shape(cfg)
    if shape is None:
        raise MMRSKDError(f'{config}: no Resize scale in the test pipeline '
                          'to count FLOPs at; pass --shape H W')
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmrskd'))
    complexity = model_complexity(released_cfg.model, shape)

    weights_ref = osp.basename(weights)
    if weights_url:
        weights_ref = weights_url.rstrip('/') + '/' + weights_ref
    entry = metafile_entry(
        cfg, name, weights_ref, osp.basename(released_config), metrics,
        teacher_metrics, complexity, collection,
        log.log_files[0] if log.log_files else None, source_config)
    entry_path = osp.join(out_dir, f'{name}.metafile.yml')
    import yaml
    with open(entry_path, 'w') as f:
        yaml.safe_dump(dict(Models=[entry]), f, sort_keys=False)
    if metafile:
        update_metafile(metafile, entry)
    return dict(checkpoint=weights, config=released_config, logs=logs,
                metafile=entry_path, metrics=metrics, step=(step_key, step),
                entry=entry)
