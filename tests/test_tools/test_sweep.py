"""tools/sweep.py and tools/gen_results_tables.py: grid expansion, launch
commands, log parsing, resume/skip logic, results and README tables.

The end-to-end test trains a 2×2 grid (two PKD loss weights × two seeds) of
a tiny distiller for real, one run SIGKILLed after its first checkpoint, and
reruns the sweep.
"""
import csv
import glob
import json
import os
import os.path as osp
import signal
import socket
import statistics
import subprocess
import sys
import time

import pytest

from mmrskd.engine.sweep import SweepRun, expand_grid, load_sweep_file
from mmrskd.engine.sweep.executor import (BUSY, DONE, PENDING, RESUME,
                                          SKIPPED, STALE, SweepExecutor,
                                          SweepProgress, run_status,
                                          training_progress, write_state)
from mmrskd.engine.sweep.grid import check_option_key, short_axis_names
from mmrskd.engine.sweep.launch import LaunchOptions, train_command
from mmrskd.engine.sweep.results import (collect_results, pick_metric,
                                         write_results)
from mmrskd.engine.sweep.tables import (END, START, BenchmarkRow,
                                        benchmark_rows, load_sweeps,
                                        replace_block, slot_rows)
from mmrskd.engine.work_dir import read_run_log
from mmrskd.testing import tiny_rotated_retinanet_cfg
from mmrskd.utils import MMRSKDError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))
import gen_results_tables  # noqa: E402
import sweep as sweep_tool  # noqa: E402

LOSS_WEIGHT = 'model.distill_losses.loss_pkd.loss_weight'
CLASSES = ('plane', 'ship', 'storage-tank', 'tennis-court', 'small-vehicle')


# ----------------------------------------------------------------- helpers
def write_scalars(work_dir, stamp, records, tail=''):
    """A mmengine-style ``<stamp>/vis_data/scalars.json`` (+ text log)."""
    folder = osp.join(work_dir, stamp)
    os.makedirs(osp.join(folder, 'vis_data'), exist_ok=True)
    with open(osp.join(folder, 'vis_data', 'scalars.json'), 'w') as f:
        f.write(''.join(json.dumps(r) + '\n' for r in records) + tail)
    with open(osp.join(folder, f'{stamp}.log'), 'w') as f:
        f.write('GPU number: 1\n')


def train_records(times, first_step=1):
    return [dict(lr=0.01, loss=1.0, time=t, epoch=1, iter=i, step=i)
            for i, t in enumerate(times, first_step)]


def data_settings(data_root, max_epochs=1, val_interval=1):
    """Tiny synthetic-DOTA settings at 128 px with the in-process RSDetMetric
    (mmrotate's DOTAMetric spawns worker processes: slow in tests)."""
    return f"""
_base_ = ['{REPO}/configs/_base_/datasets/synthetic_dota.py',
          '{REPO}/configs/_base_/default_runtime.py']
_pipe = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=(128, 128), keep_ratio=True),
    dict(type='mmdet.PackDetInputs')]
train_dataloader = dict(batch_size=4, dataset=dict(
    data_root='{data_root}/', pipeline=_pipe))
val_dataloader = dict(batch_size=2, dataset=dict(
    data_root='{data_root}/', pipeline=_pipe))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='RSDetMetric', box_type='rbox')
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={max_epochs},
                 val_interval={val_interval})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=2),
                     visualization=dict(type='mmdet.DetVisualizationHook'))
randomness = dict(seed=0)
"""


def write_configs(folder, data_root, extra='', **settings):
    """``student.py``, ``teacher.py`` (tiny Rotated RetinaNets) and
    ``kd.py`` (PKD between them, student/teacher by path) in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name, (width, fpn) in dict(student=(8, 16), teacher=(16, 32)).items():
        model = tiny_rotated_retinanet_cfg(
            base_channels=width, fpn_channels=fpn,
            num_classes=len(CLASSES)).to_dict()
        paths[name] = osp.join(folder, f'{name}.py')
        with open(paths[name], 'w') as f:
            f.write(data_settings(data_root, **settings) +
                    f'model = {model!r}\n')
    paths['kd'] = osp.join(folder, 'kd.py')
    with open(paths['kd'], 'w') as f:
        f.write(data_settings(data_root, **settings) + f"""
model = dict(
    type='SingleTeacherDistiller',
    student='{paths['student']}',
    teacher='{paths['teacher']}',
    taps=dict(s_fpn='student.neck', t_fpn='teacher.neck'),
    connectors=dict(adapt=dict(type='MultiLevelConnector', num_levels=5,
        connector=dict(type='ConvBNConnector', in_channels=16,
                       out_channels=32))),
    distill_losses=dict(loss_pkd=dict(type='PKDLoss', loss_weight=1.0)),
    loss_mappings=dict(loss_pkd=dict(
        preds_S=dict(source='s_fpn', connector='adapt'), preds_T='t_fpn')))
val_cfg = dict(type='DistillValLoop', teacher_eval='once')
""" + extra)
    return paths


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from mmrskd.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('sweep_dota')
    generate('dota', str(root), 10, seed=1, img_size=128)  # 8 train, 2 val
    return str(root)


# ------------------------------------------------------------------- grid
def test_grid_expands_to_stable_readable_runs():
    sweep = expand_grid(
        dict(configs=['configs/pkd/pkd_a_dota.py'],
             grid={LOSS_WEIGHT: [1, 2.0], 'randomness.seed': [0, 1]},
             cfg_options={'train_cfg.max_epochs': 3}), 'wd')
    assert [r.name for r in sweep.runs] == [
        'pkd_a_dota/loss_weight=1,seed=0', 'pkd_a_dota/loss_weight=1,seed=1',
        'pkd_a_dota/loss_weight=2,seed=0', 'pkd_a_dota/loss_weight=2,seed=1']
    run = sweep.runs[2]
    assert run.work_dir == osp.join('wd', 'pkd_a_dota',
                                    'loss_weight=2,seed=0')
    assert run.option_args() == ['train_cfg.max_epochs=3',
                                 f'{LOSS_WEIGHT}=2.0', 'randomness.seed=0']
    assert run.axis_values == {'loss_weight': 2.0, 'seed': 0}
    again = expand_grid(
        dict(configs=['configs/pkd/pkd_a_dota.py'],
             grid={LOSS_WEIGHT: [1, 2.0], 'randomness.seed': [0, 1]}), 'wd')
    assert [r.name for r in again.runs] == [r.name for r in sweep.runs]


def test_short_axis_names_tell_axes_apart():
    assert short_axis_names(['a.x.loss_weight', 'b.x.loss_weight', 'r.seed'
                             ]) == {'a.x.loss_weight': 'a.x.loss_weight',
                                    'b.x.loss_weight': 'b.x.loss_weight',
                                    'r.seed': 'seed'}
    assert short_axis_names(['m.a.tau', 'm.b.tau', 'm.b.w']) == {
        'm.a.tau': 'a.tau', 'm.b.tau': 'b.tau', 'm.b.w': 'w'}


def test_experiments_sweeping_like_named_keys_name_their_runs_apart():
    # one experiment per ablated term: both axes end in loss_weight
    sweep = expand_grid(dict(configs=None, experiments=[
        dict(configs=['k.py'], grid={'m.pred.loss_weight': [0]}),
        dict(configs=['k.py'], grid={'m.drfd.loss_weight': [0]})],
        grid={'randomness.seed': [1]}), 'w')
    assert [r.name for r in sweep.runs] == [
        'k/pred.loss_weight=0,seed=1', 'k/drfd.loss_weight=0,seed=1']


def test_values_mean_what_cfg_options_makes_of_them():
    # YAML reads 1e-3 as a string; --cfg-options would give the float
    run = expand_grid(dict(configs=['k.py'], grid={'a.t': ['1e-3', [1, 2]]}),
                      'w').runs
    assert [r.cfg_options['a.t'] for r in run] == [0.001, [1, 2]]
    # an experiment's own axes come first, shared ones (the seed) last
    assert [r.name for r in expand_grid(dict(
        grid={'randomness.seed': [0]},
        experiments=[dict(configs=['k.py'], grid={'a.w': [1]})]), 'w').runs
    ] == ['k/w=1,seed=0']
    with pytest.raises(MMRSKDError, match='dict value'):
        expand_grid(dict(configs=['k.py'], grid={'a': [dict(b=1)]}), 'w')
    with pytest.raises(MMRSKDError, match='splits or strips'):
        expand_grid(dict(configs=['k.py'], cfg_options={'a': 'x,y'}), 'w')
    with pytest.raises(MMRSKDError, match='repeated values'):
        expand_grid(dict(configs=['k.py'], grid={'a': [2, 2.0]}), 'w')
    with pytest.raises(MMRSKDError, match='comes from'):
        expand_grid(dict(configs=['a/k.py', 'b/k.py']), 'w')
    with pytest.raises(MMRSKDError, match='same axes'):
        expand_grid(dict(experiments=[dict(configs=['k.py']), dict(
            configs=['k.py'], grid={'randomness.seed': [0]})]), 'w')
    with pytest.raises(MMRSKDError, match='unknown keys'):
        expand_grid(dict(configs=['k.py'], grids={}), 'w')


def test_sweep_files_yaml_and_python(tmp_path):
    (tmp_path / 's.yml').write_text(f"""
configs: [kd.py]
grid:
  {LOSS_WEIGHT}: [1, 2]
  randomness.seed: [0]
cfg_options: {{train_cfg.max_epochs: 2}}
experiments:
  - configs: [student.py]
    grid: {{{LOSS_WEIGHT}: null}}
    cfg_options: {{train_cfg.max_epochs: 4}}
metric: mAP
work_dir: somewhere
""")
    (tmp_path / 's.py').write_text(
        "configs = ['kd.py']\n"
        f"grid = {{'{LOSS_WEIGHT}': [1, 2], 'randomness.seed': [0]}}\n"
        "cfg_options = {'train_cfg.max_epochs': 2}\n"
        "experiments = [dict(configs=['student.py'], grid={"
        f"'{LOSS_WEIGHT}': None}}, cfg_options={{'train_cfg.max_epochs': 4}})]"
        "\nmetric = 'mAP'\nwork_dir = 'somewhere'\n")
    for name in ('s.yml', 's.py'):
        sweep = load_sweep_file(str(tmp_path / name))
        assert sweep.work_dir == 'somewhere' and sweep.metric == 'mAP'
        assert [r.name for r in sweep.runs] == [
            'kd/loss_weight=1,seed=0', 'kd/loss_weight=2,seed=0',
            'student/seed=0']
        assert sweep.runs[2].cfg_options == {'train_cfg.max_epochs': 4,
                                             'randomness.seed': 0}
    assert sweep_tool.build_sweep(sweep_tool.parse_args(
        [str(tmp_path / 's.py'), '--work-dir', 'x'])).runs[0].work_dir == \
        osp.join('x', 'kd', 'loss_weight=1,seed=0')


@pytest.mark.parametrize('key, match', [
    ('model.distill_losses.loss_pkd.loss_wieght',
     'has no "loss_wieght" at model.distill_losses.loss_pkd;'),
    ('model.distill_loses.loss_pkd.loss_weight',
     'has no "distill_loses" at model;'),
    ('param_scheduler.2.end', 'has no "2" at param_scheduler;'),
    ('randomnes.seed', 'has no "randomnes" at the top level;'),
    ('model.distill_losses.loss_pdk.loss_weight',
     'has no "loss_pdk" at model.distill_losses;'),
])
def test_a_misspelt_key_is_a_one_line_error(key, match):
    cfg = dict(model=dict(type='SingleTeacherDistiller', distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', loss_weight=1.0))),
        param_scheduler=[dict(end=1), dict(end=2)])
    with pytest.raises(MMRSKDError, match=f'^grid: "{key}": kd.py {match}'):
        check_option_key('grid', 'kd.py', cfg, key)


@pytest.mark.parametrize('key', [
    'model.distill_losses.loss_pkd.loss_weight',  # a value the config has
    'param_scheduler.1.end',  # in a list, by index
    'randomness.seed',  # an argument of mmengine's Runner
    'model.grad_balance',  # an argument of the distiller
    'model.distill_losses.loss_pkd.resize_stu',  # left at its default
    'train_cfg.val_interval',  # a new leaf in a dict of no model component
    'model.distill_losses.loss_tasd.terms.loss_kd.task',  # a new term
])
def test_a_key_the_config_can_take_is_accepted(key):
    cfg = dict(model=dict(type='SingleTeacherDistiller', distill_losses=dict(
        loss_pkd=dict(type='PKDLoss', loss_weight=1.0),
        loss_tasd=dict(type='LTDTASDLoss', terms=dict(
            loss_ld=dict(task='reg', region='pos'))))),
        param_scheduler=[dict(end=1), dict(end=2)],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1))
    check_option_key('grid', 'kd.py', cfg, key)


def test_a_misspelt_grid_key_fails_before_any_run_trains(
        tmp_path, data_root, capsys):
    paths = write_configs(str(tmp_path / 'configs'), data_root)
    with pytest.raises(SystemExit) as exit_info:
        sweep_tool.main([paths['kd'], '--grid',
                         'model.distill_losses.loss_pkd.loss_wieght=1,2',
                         '--work-dir', str(tmp_path / 'sweep')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and '"loss_wieght"' in err \
        and 'kd/loss_wieght=1' in err and 'check the spelling' in err
    assert not osp.exists(tmp_path / 'sweep')


@pytest.mark.parametrize('path', sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'sweeps', '*.yml'))))
def test_every_shipped_sweep_names_keys_its_configs_take(path):
    from mmrskd.utils.config import load_config
    configs = {}
    for run in load_sweep_file(osp.join(REPO, path)).runs:
        if run.config not in configs:
            configs[run.config] = load_config(
                osp.join(REPO, run.config)).to_dict()
        for key in run.cfg_options:
            check_option_key(f'{path}: {run.name}', run.config,
                             configs[run.config], key)


# ---------------------------------------------------------------- launch
def test_train_commands_of_the_launchers():
    run = expand_grid(dict(configs=['c/kd.py'], grid={'randomness.seed': [3]}
                           ), 'w').runs[0]
    none = train_command(run, LaunchOptions(python='py'), resume=True)
    assert none == ['py', osp.join('tools', 'train.py'), 'c/kd.py',
                    '--work-dir', osp.join('w', 'kd', 'seed=3'),
                    '--cfg-options', 'randomness.seed=3', '--resume']
    torchrun = train_command(run, LaunchOptions('pytorch', gpus=4,
                                                python='py'))
    assert torchrun[:6] == ['py', '-m', 'torch.distributed.run',
                            '--nnodes=1', '--nproc_per_node=4',
                            '--master_port=29500']
    assert torchrun[-2:] == ['--launcher', 'pytorch']
    srun = train_command(run, LaunchOptions(
        'slurm', gpus=16, partition='p1', srun_args='--quotatype=auto',
        python='py'))
    assert srun[:10] == [
        'srun', '-p', 'p1', '--job-name=kd_seed=3', '--gres=gpu:8',
        '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', '--quotatype=auto']
    assert srun[-2:] == ['--launcher', 'slurm'] and 'py' in srun
    with pytest.raises(MMRSKDError, match='--partition'):
        LaunchOptions('slurm').check()
    with pytest.raises(MMRSKDError, match='launcher pytorch'):
        LaunchOptions('none', gpus=2).check()


# ------------------------------------------------------------------ logs
def test_run_log_merges_restarts_and_picks_best(tmp_path):
    work_dir = str(tmp_path)
    write_scalars(work_dir, '20240101_000000', train_records(
        [9.0, 0.5, 0.7, 0.6]) + [
            {'teacher/dota/mAP': 0.61, 'step': 2},
            {'dota/mAP': 0.20, 'dota/AP50': 0.2, 'time': 1.0, 'step': 1}],
        tail='{"lr": 0.01, "loss": 1')  # killed mid-line
    # resumed at iter 2: steps 3, 4 are logged again and win
    write_scalars(work_dir, '20240102_000000', train_records(
        [0.4, 0.4, 0.3, 0.2], first_step=3) + [
            {'dota/mAP': 0.35, 'dota/AP50': 0.4, 'step': 2},
            {'dota/mAP': 0.30, 'dota/AP50': 0.5, 'step': 3}])
    os.makedirs(osp.join(work_dir, 'not_a_run'))
    log = read_run_log(work_dir)
    assert sorted(log.train) == [1, 2, 3, 4, 5, 6]
    assert log.train[3]['time'] == 0.4
    assert len(log.log_files) == len(log.scalar_files) == 2
    result, = collect_results([SweepRun('k', 'k.py', (), {}, work_dir)])
    assert result.metric == 'dota/mAP' and result.final == 0.30
    assert (result.best, result.best_step) == (0.35, 2)
    assert result.teacher == 0.61 and result.iters == 6
    # times by step 9.0 .5 .4 .4 .3 .2: without the first window
    assert result.time_per_iter == statistics.median([0.5, 0.4, 0.4, 0.3,
                                                      0.2])
    ap50, = collect_results([result.run], 'AP50')
    assert (ap50.metric, ap50.best, ap50.best_step) == ('dota/AP50', 0.5, 3)
    assert pick_metric(['coco/bbox_mAP_50', 'coco/bbox_mAP']) == \
        'coco/bbox_mAP'
    with pytest.raises(MMRSKDError, match='was not logged'):
        pick_metric(['dota/mAP', 'dota/AP50'], 'bbox_mAP')


def test_run_status_from_state_and_checkpoint(tmp_path):
    work_dir = str(tmp_path / 'run')
    assert run_status(work_dir) == PENDING
    os.makedirs(work_dir)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    open(ckpt, 'w').close()
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    assert run_status(work_dir) == RESUME  # trained outside the sweep
    write_state(work_dir, status='running', pid=os.getpid(),
                host=socket.gethostname(), fingerprint='a')
    assert run_status(work_dir, 'a') == BUSY
    dead = subprocess.Popen([sys.executable, '-c', ''])
    dead.wait()
    write_state(work_dir, pid=dead.pid)
    assert run_status(work_dir, 'a') == RESUME
    write_state(work_dir, pid=1, host='another-host')  # cannot check it
    assert run_status(work_dir, 'a') == BUSY
    write_state(work_dir, status='done')
    assert run_status(work_dir, 'a') == SKIPPED
    assert run_status(work_dir, 'b') == STALE
    write_state(work_dir, status='failed')
    os.remove(ckpt)
    assert run_status(work_dir, 'a') == PENDING


def test_a_run_finished_by_another_sweep_process_is_not_trained_again(
        tmp_path):
    # the fake train script of run a0 finishes run a1 as a second sweep
    # process would; this process must then skip a1 instead of training it
    script = tmp_path / 'train.py'
    script.write_text(
        'import sys\n'
        'from mmrskd.engine.sweep.executor import write_state\n'
        'work_dir = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'open(work_dir + "/trained", "w").close()\n'
        'if work_dir.endswith("a=0"):\n'
        '    write_state(work_dir[:-1] + "1", status="done")\n')
    (tmp_path / 'c.py').write_text('a = 0\n')
    sweep = expand_grid(dict(configs=[str(tmp_path / 'c.py')],
                             grid={'a': [0, 1]}), str(tmp_path / 'w'))
    statuses = SweepExecutor(sweep, LaunchOptions(
        train_script=str(script))).run()
    assert list(statuses.values()) == [DONE, SKIPPED]
    first, second = (run.work_dir for run in sweep.runs)
    assert osp.isfile(osp.join(first, 'trained'))
    assert not osp.isfile(osp.join(second, 'trained'))
    # --force retrains both, the one finished meanwhile too
    statuses = SweepExecutor(sweep, LaunchOptions(train_script=str(script)),
                             force=True).run()
    assert list(statuses.values()) == [DONE, DONE]
    assert osp.isfile(osp.join(sweep.runs[1].work_dir, 'trained'))


def test_training_processes_run_one_thread_unless_the_user_sets_it(
        tmp_path, monkeypatch):
    script = tmp_path / 'train.py'
    script.write_text(
        'import os, sys\n'
        'work_dir = sys.argv[sys.argv.index("--work-dir") + 1]\n'
        'os.makedirs(work_dir, exist_ok=True)\n'
        'with open(work_dir + "/threads", "w") as f:\n'
        '    f.write(os.environ.get("OMP_NUM_THREADS", "unset"))\n')
    (tmp_path / 'c.py').write_text('a = 0\n')
    sweep = expand_grid(dict(configs=[str(tmp_path / 'c.py')]),
                        str(tmp_path / 'w'))
    threads = osp.join(sweep.runs[0].work_dir, 'threads')
    options = LaunchOptions(train_script=str(script))
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    assert SweepExecutor(sweep, options).run() == {'c': DONE}
    assert open(threads).read() == '1'
    monkeypatch.setenv('OMP_NUM_THREADS', '3')  # the user's own value
    assert SweepExecutor(sweep, options, force=True).run() == {'c': DONE}
    assert open(threads).read() == '3'


def test_progress_lines_and_training_progress():
    import io
    stream = io.StringIO()
    progress = SweepProgress({'a/x=1': SKIPPED, 'a/x=2': PENDING},
                             stream=stream, live=False)
    progress.update('a/x=2', 'running', 'epoch 1')
    progress.update('a/x=2', detail='epoch 2')  # no line: status unchanged
    progress.update('a/x=2', 'done', '3 s')
    progress.close()
    assert stream.getvalue().splitlines() == [
        '[sweep 1/2] skipped  a/x=1', '[sweep 1/2] pending  a/x=2',
        '[sweep 1/2] running  a/x=2  epoch 1', '[sweep 2/2] done     a/x=2  '
        '3 s', '[sweep] 2/2 runs finished  (done 1  skipped 1)']
    line = ('11/23 12:31:11 - mmengine - INFO - Epoch(train)  [3][ 5/12]  '
            'lr: 1.0000e-02  eta: 0:01:10  time: 0.1684')
    assert training_progress('x\n' + line + '\nSaving') == \
        'epoch 3 [5/12] eta 0:01:10'
    assert training_progress('Iter(train) [ 200/9000]  lr: 1') == \
        'iter 200/9000'


# --------------------------------------------------------------- results
def _fake_sweep(tmp_path, paths):
    """A distillation sweep (2 loss weights × 2 seeds) and a student sweep
    (2 seeds) with hand-written logs."""
    kd_dir, st_dir = str(tmp_path / 'kd_sweep'), str(tmp_path / 'st_sweep')
    finals = {(1, 0): 0.30, (1, 1): 0.34, (2, 0): 0.28, (2, 1): 0.28}
    kd = expand_grid(dict(configs=[paths['kd']], grid={
        LOSS_WEIGHT: [1, 2], 'randomness.seed': [0, 1]}), kd_dir)
    for run in kd.runs:
        weight, seed = run.cfg_options[LOSS_WEIGHT], run.cfg_options[
            'randomness.seed']
        write_scalars(run.work_dir, '20240101_000000', train_records(
            [9.0, 0.3, 0.3, 0.3]) + [
                {'teacher/rsdet/mAP': 0.5, 'step': 4},
                {'rsdet/mAP': finals[weight, seed] - 0.05, 'step': 1},
                {'rsdet/mAP': finals[weight, seed], 'step': 2}])
        write_state(run.work_dir, status='done')
    st = expand_grid(dict(configs=[paths['student']], grid={
        'randomness.seed': [0, 1]}), st_dir)
    for run, final in zip(st.runs, (0.25, 0.27)):
        write_scalars(run.work_dir, '20240101_000000', train_records(
            [5.0, 0.2, 0.2, 0.2]) + [{'rsdet/mAP': final, 'step': 2}])
        write_state(run.work_dir, status='done')
    from mmrskd.engine.sweep.executor import write_manifest
    write_manifest(kd)
    write_manifest(st)
    return kd, st, finals


def test_results_csv_markdown_png(tmp_path, data_root):
    paths = write_configs(str(tmp_path / 'configs' / 'kd'), data_root)
    kd, _, finals = _fake_sweep(tmp_path, paths)
    results = collect_results(kd.runs)
    out = write_results(results, str(tmp_path / 'out'))
    with open(out['csv']) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        key = (int(row['loss_weight']), int(row['seed']))
        assert float(row['final']) == pytest.approx(finals[key])
        assert float(row['best']) == pytest.approx(finals[key])
        assert row['best step'] == '2' and row['metric'] == 'rsdet/mAP'
        assert float(row['teacher']) == 0.5 and float(row['s/iter']) == 0.3
        assert row['status'] == 'done'
    text = open(out['md']).read()
    mean = statistics.fmean([0.30, 0.34])
    std = statistics.stdev([0.30, 0.34])
    assert f'| kd | loss_weight=1 | rsdet/mAP | 2 | {mean:.4f} ± {std:.4f}' \
        in text
    assert '| kd | loss_weight=2 | rsdet/mAP | 2 | 0.2800 ± 0.0000' in text
    with open(out['png'], 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_seeds_group_but_other_fixed_overrides_stay_apart():
    from mmrskd.engine.sweep.results import RunResult, group_by_setting
    runs = []
    for epochs, work_dir in ((12, 'a'), (24, 'b')):
        runs += expand_grid(dict(configs=['c/kd.py'], grid={
            'randomness.seed': [0, 1], LOSS_WEIGHT: [1]},
            cfg_options={'train_cfg.max_epochs': epochs}), work_dir).runs
    groups = group_by_setting([RunResult(run, 'done') for run in runs])
    assert [(key, [r.run.work_dir for r in group])
            for key, group in groups.items()] == [
        (('kd', (('loss_weight', 1), )),
         [osp.join('a', 'kd', 'seed=0,loss_weight=1'),
          osp.join('a', 'kd', 'seed=1,loss_weight=1')]),
        (('kd', (('loss_weight', 1), ('train_cfg.max_epochs', 24))),
         [osp.join('b', 'kd', 'seed=0,loss_weight=1'),
          osp.join('b', 'kd', 'seed=1,loss_weight=1')])]


def test_method_readmes_keep_a_slot_per_distiller_config(tmp_path):
    folder = osp.realpath(osp.join(REPO, 'configs', 'fitnet'))
    config = osp.join(folder, 'fitnet_rotated-retinanet_r18-w16_rotated-'
                      'retinanet_r18-w16-24e_12e_synthetic-dota.py')
    slots = slot_rows(folder, [])
    assert [(r.config, r.distilled) for r in slots] == [(config, None)]
    ran = BenchmarkRow(config, 'fitnet', (), 'dota/mAP', None)
    assert slot_rows(folder, [ran]) == []
    # outside configs/ (the repository README's folder): no slots
    (tmp_path / 'setup.py').write_text('raise SystemExit\n')
    assert slot_rows(str(tmp_path), []) == []


def test_benchmark_table_teacher_student_gain_overhead(tmp_path, data_root):
    paths = write_configs(str(tmp_path / 'configs' / 'kd'), data_root)
    kd, st, _ = _fake_sweep(tmp_path, paths)
    rows = benchmark_rows(load_sweeps([kd.work_dir, st.work_dir]))
    assert [dict(r.setting) for r in rows] == [{'loss_weight': 1},
                                               {'loss_weight': 2}]
    row = rows[0]
    assert row.distilled.mean == pytest.approx(0.32)
    assert row.distilled.std == pytest.approx(statistics.stdev([.30, .34]))
    assert row.student.mean == pytest.approx(0.26) and row.student.count == 2
    assert row.teacher.mean == pytest.approx(0.5)
    assert row.gain == pytest.approx(0.06)
    assert rows[1].gain == pytest.approx(0.02)
    assert row.kd_time == pytest.approx(0.3)
    assert row.student_time == pytest.approx(0.2)
    assert row.overhead == pytest.approx(1.5)
    # params of the student, counted independently
    from mmengine.config import Config
    from mmrskd.registry import MODELS
    student = MODELS.build(Config.fromfile(paths['student']).model)
    assert row.params == sum(p.numel() for p in student.parameters())
    assert row.flops > 0 and row.input_shape == (128, 128)

    # one command regenerates the README tables between the markers
    root_readme = tmp_path / 'README.md'
    kd_readme = tmp_path / 'configs' / 'kd' / 'README.md'
    other = tmp_path / 'configs' / 'other' / 'README.md'
    other.parent.mkdir()
    for readme in (root_readme, kd_readme, other):
        readme.write_text(f'# Title\n\n{START}\nold\n{END}\n\nafter\n')
    argv = [kd.work_dir, st.work_dir, '--readme', str(root_readme),
            str(kd_readme), str(other)]
    assert gen_results_tables.main(argv) == 0
    text = kd_readme.read_text()
    assert text.startswith('# Title\n\n' + START) and text.endswith(
        END + '\n\nafter\n') and 'old' not in text
    line = next(li for li in text.splitlines() if 'loss_weight=1' in li)
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[:8] == ['[kd](kd.py)', 'loss_weight=1', '2', 'rsdet/mAP',
                         '50.0 ± 0.0', '26.0 ± 1.4', '32.0 ± 2.8', '+6.0']
    assert cells[-3:] == ['0.300', '0.200', '×1.50']
    assert '[kd](configs/kd/kd.py)' in root_readme.read_text()
    assert 'No distillation results yet' in other.read_text()
    assert gen_results_tables.main(argv + ['--check']) == 0  # up to date
    kd_readme.write_text(kd_readme.read_text().replace('+6.0', '+9.9'))
    assert gen_results_tables.main(argv + ['--check']) == 1
    with pytest.raises(MMRSKDError, match='markers'):
        replace_block('no markers', 'x', 'README.md')


def test_model_index_lists_the_metafiles(tmp_path):
    from mmrskd.engine.release import model_index_text, write_model_index
    for method in ('pkd', 'fgd', 'cwd'):
        (tmp_path / 'configs' / method).mkdir(parents=True)
    for method in ('pkd', 'fgd'):
        (tmp_path / 'configs' / method / 'metafile.yml').write_text(
            'Models: []\n')
    assert write_model_index(str(tmp_path)) is True
    import yaml
    index = yaml.safe_load((tmp_path / 'model-index.yml').read_text())
    assert index == {'Import': ['configs/fgd/metafile.yml',
                                'configs/pkd/metafile.yml']}
    assert write_model_index(str(tmp_path), check=True) is False
    (tmp_path / 'configs' / 'cwd' / 'metafile.yml').write_text(
        'Models:\n  - Name: [unclosed\n')
    with pytest.raises(MMRSKDError, match=r'cwd/metafile.yml:\d+: not valid'):
        write_model_index(str(tmp_path))
    # the repository's own index is generated from its metafiles
    with open(osp.join(REPO, 'model-index.yml')) as f:
        assert f.read() == model_index_text(REPO), (
            'model-index.yml is outdated: run python '
            'tools/gen_results_tables.py --model-index')


# ------------------------------------------------------------ end to end
KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook

from mmrskd.registry import HOOKS


@HOOKS.register_module()
class KillOnceHook(Hook):
    """SIGKILL the run whose work dir ends with ``target`` right after the
    checkpoint of ``epoch`` is saved, the first time only."""
    priority = 'LOWEST'  # after the CheckpointHook

    def __init__(self, target, marker, epoch=1):
        self.target, self.marker, self.epoch = target, marker, epoch

    def after_train_epoch(self, runner):
        if (runner.work_dir.endswith(self.target)
                and runner.epoch + 1 == self.epoch
                and not os.path.exists(self.marker)):
            open(self.marker, 'w').close()
            os.kill(os.getpid(), signal.SIGKILL)
'''
KILLED = 'loss_weight=2,seed=0'


@pytest.fixture(scope='module')
def killed_sweep(tmp_path_factory, data_root):
    """Run the 2×2 sweep (one run killed after epoch 1 of 2), then again."""
    tmp = tmp_path_factory.mktemp('sweep_e2e')
    (tmp / 'kill_once_hook.py').write_text(KILL_HOOK)
    paths = write_configs(
        str(tmp / 'configs'), data_root, max_epochs=2, val_interval=2,
        extra=f"""
custom_imports = dict(imports=['kill_once_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='KillOnceHook', target='{KILLED}',
                     marker='{tmp / "killed"}')]
""")
    work_dir = str(tmp / 'sweep')
    argv = [paths['kd'], '--grid', f'{LOSS_WEIGHT}=1,2', 'randomness.seed=0,1',
            '--work-dir', work_dir]
    outputs = []
    with pytest.MonkeyPatch.context() as patch:
        # the runs import the hook; so does the sweep reading the config
        patch.setenv('PYTHONPATH', os.pathsep.join(
            [str(tmp), os.environ.get('PYTHONPATH', '')]))
        patch.syspath_prepend(str(tmp))
        import contextlib
        import io
        for extra in (['--dry-run'], [], []):
            stream = io.StringIO()
            with contextlib.redirect_stdout(stream):
                rc = sweep_tool.main(argv + extra)
            outputs.append((rc, stream.getvalue()))
    return dict(work_dir=work_dir, outputs=outputs, paths=paths, argv=argv,
                killed=osp.join(work_dir, 'kd', KILLED))


def test_sweep_dry_run_lists_the_grid(killed_sweep):
    rc, out = killed_sweep['outputs'][0]
    assert rc == 0
    names = [line.split()[1] for line in out.splitlines()
             if line.startswith('pending')]
    assert names == ['kd/loss_weight=1,seed=0', 'kd/loss_weight=1,seed=1',
                     'kd/loss_weight=2,seed=0', 'kd/loss_weight=2,seed=1']
    assert f'{LOSS_WEIGHT}=2 randomness.seed=0' in out


def test_sweep_survives_a_killed_run_and_resumes_it(killed_sweep):
    (rc1, out1), (rc2, out2) = killed_sweep['outputs'][1:]
    killed = killed_sweep['killed']
    assert rc1 == 1 and f'failed   kd/{KILLED}' in out1
    assert out1.count('done     kd/') == 3
    # second call: finished runs skipped, the killed one resumed
    assert rc2 == 0
    assert out2.count('skipped  kd/') == 3
    assert f'running  kd/{KILLED}  from epoch_1.pth' in out2
    assert f'done     kd/{KILLED}' in out2
    state = json.load(open(osp.join(killed, 'sweep_run.json')))
    assert state['attempts'] == 2 and state['status'] == 'done'
    assert state['resumed_from'].endswith('epoch_1.pth')
    assert '--resume' in state['command']
    logs = read_run_log(killed).log_files
    assert len(logs) == 2 and 'resumed epoch: 1, iter: 2' in open(
        logs[1]).read()
    for name in ('loss_weight=1,seed=0', 'loss_weight=2,seed=1'):
        run = osp.join(killed_sweep['work_dir'], 'kd', name)
        assert len(read_run_log(run).log_files) == 1  # not retrained
        assert json.load(open(osp.join(run, 'sweep_run.json')))[
            'attempts'] == 1


def test_sweep_results_table_has_the_four_runs(killed_sweep):
    work_dir = killed_sweep['work_dir']
    with open(osp.join(work_dir, 'results.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r['status'] == 'done' for r in rows)
    for row in rows:
        # the value in the table is the last one the run logged
        path = read_run_log(row['work_dir']).scalar_files[-1]
        records = [json.loads(line) for line in open(path)]
        final = [r['rsdet/mAP'] for r in records if 'rsdet/mAP' in r][-1]
        teacher = [r['teacher/rsdet/mAP'] for r in records
                   if 'teacher/rsdet/mAP' in r]
        assert float(row['final']) == final
        assert row['best step'] == '2' and row['iters'] == '4'
        if teacher:
            assert float(row['teacher']) == teacher[-1]
    assert open(osp.join(work_dir, 'results.md')).read().count(
        '| kd/loss_weight=') == 4
    with open(osp.join(work_dir, 'results.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_sweep_refuses_changed_settings(killed_sweep, capsys):
    argv = killed_sweep['argv'] + ['--cfg-options', 'train_cfg.max_epochs=3']
    with pytest.raises(SystemExit) as exit_info:
        sweep_tool.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'other settings' in err \
        and '--force' in err


# ---------------------------------------------------------------- slow
@pytest.mark.slow
def test_demo_sweep_killed_externally_then_resumed(tmp_path):
    """The demo PKD config on synthetic DOTA, 2 loss weights × 2 seeds, the
    training process of one run SIGKILLed from outside mid-training."""
    from mmrskd.datasets.synthetic import generate
    data = tmp_path / 'data'
    generate('dota', str(data), 40, seed=0)
    config = osp.join(REPO, 'configs', 'demo', 'pkd_rotated-retinanet_r18-w16'
                      '_rotated-retinanet_r18-w16-24e_12e_synthetic-dota.py')
    work_dir = str(tmp_path / 'sweep')
    command = [
        sys.executable, osp.join(REPO, 'tools', 'sweep.py'), config,
        '--grid', f'{LOSS_WEIGHT}=1,2', 'randomness.seed=0,1',
        '--work-dir', work_dir, '--cfg-options', 'model.teacher_ckpt=None',
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
        'param_scheduler.1.end=2', f'train_dataloader.dataset.data_root={data}'
        '/', f'val_dataloader.dataset.data_root={data}/',
        f'test_dataloader.dataset.data_root={data}/',
        'default_hooks.checkpoint.interval=1']
    target = osp.join(work_dir, 'pkd_rotated-retinanet_r18-w16_rotated-'
                      'retinanet_r18-w16-24e_12e_synthetic-dota',
                      'loss_weight=1,seed=1')
    sweep = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 1800
    pointer = osp.join(target, 'last_checkpoint')
    # the CheckpointHook writes last_checkpoint once epoch_1.pth is complete
    while not (osp.isfile(pointer) and open(pointer).read().endswith(
            'epoch_1.pth')):
        assert sweep.poll() is None and time.time() < deadline
        time.sleep(0.2)
    pid = json.load(open(osp.join(target, 'sweep_run.json')))['pid']
    os.kill(pid, signal.SIGKILL)
    out1, _ = sweep.communicate(timeout=3600)
    assert sweep.returncode == 1, out1
    assert not osp.isfile(osp.join(target, 'epoch_2.pth'))

    second = subprocess.run(command, cwd=REPO, capture_output=True,
                            text=True, timeout=3600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count('skipped') >= 3
    assert 'from epoch_1.pth' in second.stdout
    assert osp.isfile(osp.join(target, 'epoch_2.pth'))
    with open(osp.join(work_dir, 'results.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r['final'] != '' for r in rows)
    assert osp.getsize(osp.join(work_dir, 'results.png')) > 0
