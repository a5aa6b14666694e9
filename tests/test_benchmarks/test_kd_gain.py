"""benchmarks/kd_gain.py: the paired statistics and the JSON it writes,
against hand-computed values (the benchmark itself is not in the suite)."""
import json
import math
import os.path as osp

import pytest

from mmrskd.engine.sweep import RunResult, SweepRun
from mmrskd.evaluation.functional import paired_gain, sample_std
from mmrskd.utils import MMRSKDError


def test_paired_gain_by_hand():
    # gains 2, 3, 2: mean 7/3, std sqrt(1/3), se 1/3, t = 7
    stats = paired_gain({0: 3.0, 1: 5.0, 2: 4.0, 9: 1.0},
                        {0: 1.0, 1: 2.0, 2: 2.0, 7: 0.0})
    assert stats['seeds'] == [0, 1, 2]
    assert stats['gains'] == [2.0, 3.0, 2.0]
    assert stats['mean'] == pytest.approx(7 / 3)
    assert stats['std'] == pytest.approx(math.sqrt(1 / 3))
    assert stats['se'] == pytest.approx(1 / 3)
    assert stats['t'] == pytest.approx(7.0)
    assert stats['beats']


def test_paired_gain_needs_t_of_two_and_a_positive_mean():
    # gains 1, -1, 2: mean 2/3, std sqrt(7/3), t = (2/3) / sqrt(7/9) = 0.756
    weak = paired_gain({0: 1.0, 1: -1.0, 2: 2.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert weak['t'] == pytest.approx((2 / 3) / math.sqrt(7 / 9))
    assert not weak['beats']
    loss = paired_gain({0: 0.0, 1: 0.0}, {0: 1.0, 1: 2.0})
    assert loss['mean'] == pytest.approx(-1.5) and not loss['beats']
    constant = paired_gain({0: 2.0, 1: 2.0}, {0: 1.0, 1: 1.0})
    assert constant['t'] == math.inf and constant['beats']
    single = paired_gain({0: 2.0}, {0: 1.0})
    assert single['t'] is None and not single['beats']


def test_sample_std_uses_bessel():
    assert sample_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        math.sqrt(5 / 3))
    assert sample_std([1.0]) is None


def _result(name, seed, final, seconds=10.0):
    run = SweepRun(name, f'configs/{name}.py',
                   (('randomness.seed', 'seed', seed), ),
                   {'randomness.seed': seed}, f'/tmp/{name}/seed={seed}')
    return RunResult(run, 'done', metric='m/mAP', final=final,
                     train_seconds=seconds)


def test_pair_record_and_json_round_trip(kd_gain, tmp_path):
    pair = dict(method='admd', data=dict(format='dior', num_images=10),
                metric='m/mAP', teacher='configs/t.py',
                student='configs/s.py',
                arms=dict(admd='configs/a.py', pkd='configs/p.py'))
    student = {0: 0.40, 1: 0.42, 2: 0.41}
    admd = {0: 0.43, 1: 0.44, 2: 0.45}
    pkd = {0: 0.42, 1: 0.43, 2: 0.42}
    arms = {arm: {s: _result(arm, s, v) for s, v in vals.items()}
            for arm, vals in
            dict(student=student, admd=admd, pkd=pkd).items()}
    record = kd_gain.pair_record(pair, _result('t', 0, 0.60, 30.0), arms)

    assert record['teacher'] == pytest.approx(60.0)
    assert record['arms']['admd'] == {'0': 43.0, '1': 44.0, '2': 45.0}
    # student 40, 42, 41: std 1, mean 41
    assert record['student_std'] == pytest.approx(1.0)
    assert record['teacher_margin'] == pytest.approx(19.0)
    # admd gains 3, 2, 4: mean 3, std 1, se 1/sqrt(3), t = 3 sqrt(3)
    gain = record['gains']['admd']
    assert gain['mean'] == pytest.approx(3.0)
    assert gain['t'] == pytest.approx(3 * math.sqrt(3))
    # pkd gains 2, 1, 1: mean 4/3, std sqrt(1/3), t = 4
    assert record['gains']['pkd']['t'] == pytest.approx(4.0)
    # admd over pkd: 1, 1, 3: mean 5/3, std sqrt(4/3), t = 5/2
    versus = record['method_vs_baseline']['pkd']
    assert versus['t'] == pytest.approx(2.5)
    assert record['train_seconds'] == pytest.approx(9 * 10.0 + 30.0)

    path = tmp_path / 'out' / 'kd_gain.json'
    kd_gain.write_json(dict(pairs={'p': record}), str(path))
    assert json.loads(path.read_text())['pairs']['p'] == json.loads(
        json.dumps(record))
    assert not list(path.parent.glob('*.tmp'))


def test_shipped_spec_loads_and_pairs_every_paper_method(kd_gain):
    spec = kd_gain.load_spec(kd_gain.SPEC)
    methods = {p['method'] for p in spec['pairs'].values()}
    assert methods == {'csakd', 'dked', 'admd', 'ltd'}
    assert not set(spec['seeds']['tune']) & set(spec['seeds']['heldout'])
    pair = spec['pairs']['ltd_gfl_nwpu']
    teacher, arms = kd_gain.pair_runs('ltd_gfl_nwpu', pair, [100, 101],
                                      '/tmp/w')
    variants = pair.get('variants') or {}
    assert set(arms) == {'student', 'ltd', 'pkd', *variants}
    # the teacher's last epoch, as its cfg_options set it
    epochs = pair['teacher_cfg_options']['train_cfg.max_epochs']
    assert arms['ltd'][100].cfg_options['model.teacher_ckpt'] == osp.join(
        teacher.work_dir, f'epoch_{epochs}.pth')
    assert 'model.teacher_ckpt' not in arms['student'][100].cfg_options
    order = kd_gain.ordered_runs(
        teacher, kd_gain.select_arms(arms, None, variants), [100, 101])
    assert order[0] is teacher
    assert [r.cfg_options['randomness.seed'] for r in order[1:]] == \
        [100] * 3 + [101] * 3


def test_bad_split_and_pair_are_one_line_errors(kd_gain):
    spec = kd_gain.load_spec(kd_gain.SPEC)
    with pytest.raises(MMRSKDError, match='--split nope'):
        kd_gain.split_seeds(spec, 'nope')
    with pytest.raises(MMRSKDError, match='--pairs nope'):
        kd_gain.select_pairs(spec, ['nope'])


def test_readme_table_comes_from_the_json(kd_gain, tmp_path):
    from mmrskd.engine.sweep.tables import update_kd_gain_readmes
    pair = dict(method='ltd', data=dict(format='nwpu', num_images=10),
                metric='m/mAP', teacher='t.py', student='s.py',
                arms=dict(ltd='l.py', pkd='p.py'))
    arms = {arm: {s: _result(arm, s, v) for s, v in vals.items()}
            for arm, vals in dict(student={100: 0.40, 101: 0.42},
                                  ltd={100: 0.45, 101: 0.46},
                                  pkd={100: 0.41, 101: 0.41}).items()}
    record = dict(split='heldout', seeds=[100, 101], commit='abc',
                  wall_seconds=600.0, pairs=dict(
                      ltd_gfl=kd_gain.pair_record(
                          pair, _result('t', 0, 0.6), arms)))
    readme = tmp_path / 'configs' / 'ltd' / 'README.md'
    readme.parent.mkdir(parents=True)
    readme.write_text('x\n<!-- kd-gain:start -->\nold\n<!-- kd-gain:end -->\n')
    other = tmp_path / 'configs' / 'admd' / 'README.md'
    other.parent.mkdir(parents=True)
    other.write_text('<!-- kd-gain:start -->\n<!-- kd-gain:end -->\n')
    changed = update_kd_gain_readmes(record, [str(readme), str(other)], 'k')
    assert changed == {str(readme): True, str(other): True}
    text = readme.read_text()
    assert 'old' not in text
    # ltd: gains 5, 4 -> mean +4.5, std sqrt(0.5), se 0.5, t 9
    row = next(line for line in text.splitlines() if '**ltd**' in line)
    assert '| 45.0 | 46.0 | 45.5 ± 0.7 | +4.5 ± 0.5 | 9.0 | **yes** |' in row
    # ltd - pkd: 4, 5 -> +4.5 ± 0.5
    assert any('ltd − pkd' in line and '+4.5 ± 0.5' in line
               for line in text.splitlines())
    assert 'No pair of this method' in other.read_text()
    assert update_kd_gain_readmes(record, [str(readme)], 'k') == {
        str(readme): False}
    assert 'commit `abc`' in text
    # pairs written by separate --pairs calls keep their own commits
    record['pairs']['ltd_gfl']['commit'] = 'def'
    record['pairs']['ltd_retina'] = dict(record['pairs']['ltd_gfl'],
                                         commit='abc')
    update_kd_gain_readmes(record, [str(readme)], 'k')
    assert 'commits `def` (ltd_gfl), `abc` (ltd_retina)' in \
        readme.read_text()


def test_every_dataset_of_a_run_points_at_the_pair_data(kd_gain):
    # synthetic DIOR trains on a ConcatDataset of train and val
    options = kd_gain.data_root_options(
        'configs/admd/fcos_r18-w16_fpn_12e_synthetic-dior.py', '/d/x')
    assert options == {
        'train_dataloader.dataset.datasets.0.data_root': '/d/x/',
        'train_dataloader.dataset.datasets.1.data_root': '/d/x/',
        'val_dataloader.dataset.data_root': '/d/x/',
        'test_dataloader.dataset.data_root': '/d/x/'}
    pair = dict(data=dict(format='dota', splits=dict(train=3, val=5)))
    assert kd_gain.data_root(pair, '/w') == '/w/data/dota_train3_val5'


def test_pair_data_classes_name_the_set_and_must_match_its_configs(
        kd_gain):
    five = dict(data=dict(format='dior', splits=dict(train=3)))
    every = dict(data=dict(five['data'], classes='all'))
    assert kd_gain.data_classes(kd_gain.data_spec(five)) == (
        'airplane', 'ship', 'storagetank', 'tenniscourt', 'vehicle')
    assert len(kd_gain.data_classes(kd_gain.data_spec(every))) == 20
    # a folder of its own, so the five-class set is never reused for it
    assert kd_gain.data_root(five, '/w') == '/w/data/dior_train3'
    assert kd_gain.data_root(every, '/w').startswith('/w/data/dior20cls-')
    twenty = 'configs/yolov8/yolov8_n_1xb8-12e_synthetic-dior20.py'
    classes = kd_gain.data_classes(kd_gain.data_spec(every))
    # metainfo None: DIORDataset's own classes; in another order alike
    assert kd_gain.data_root_options(twenty, '/d', classes[::-1]) == \
        kd_gain.data_root_options(twenty, '/d')
    with pytest.raises(MMRSKDError, match=r'pairs\.p\.student: configs/'
                       r'yolov8/yolov8_n_1xb8-12e_synthetic-dior\.py: '
                       r'train_dataloader.* has 5 classes .* data 20'):
        kd_gain.data_root_options(
            'configs/yolov8/yolov8_n_1xb8-12e_synthetic-dior.py', '/d',
            classes, 'pairs.p.student')


def test_pair_data_is_written_once_and_never_reused_for_another_spec(
        kd_gain, tmp_path):
    pair = dict(data=dict(format='dota', splits=dict(train=2, val=3)))
    root = str(tmp_path / 'dota')
    kd_gain.ensure_data(pair, root)
    assert len(list((tmp_path / 'dota' / 'val' / 'images').iterdir())) == 3
    kd_gain.ensure_data(pair, root)  # kept as it is
    other = dict(data=dict(format='dota', splits=dict(train=2, val=4)))
    with pytest.raises(MMRSKDError, match='delete .* to regenerate'):
        kd_gain.ensure_data(other, root)


def test_pair_schedule_options_reach_every_arm_and_the_teacher(kd_gain):
    spec = kd_gain.load_spec(kd_gain.SPEC)
    pair = dict(spec['pairs']['ltd_gfl_nwpu'],
                cfg_options={'train_cfg.max_epochs': 3},
                teacher_cfg_options={'train_cfg.max_epochs': 5})
    teacher, arms = kd_gain.pair_runs('p', pair, [100], '/tmp/w')
    assert teacher.cfg_options['train_cfg.max_epochs'] == 5
    assert all(runs[100].cfg_options['train_cfg.max_epochs'] == 3
               for runs in arms.values())
    # the distilled arms load the teacher's last epoch under its override
    assert arms['ltd'][100].cfg_options['model.teacher_ckpt'] == osp.join(
        teacher.work_dir, 'epoch_5.pth')


def test_a_pairs_subset_updates_the_json_instead_of_replacing_it(
        kd_gain, tmp_path):
    path = str(tmp_path / 'kd_gain_tune.json')
    assert kd_gain.previous_record(path, 'tune', [0, 1])['pairs'] == {}
    kd_gain.write_json(dict(split='tune', seeds=[0, 1], pairs=dict(a=1)),
                       path)
    assert kd_gain.previous_record(path, 'tune', [0, 1])['pairs'] == {'a': 1}
    # other seeds or another split: the old pairs are not mixed in
    assert kd_gain.previous_record(path, 'tune', [0, 2])['pairs'] == {}
    assert kd_gain.previous_record(path, 'heldout', [0, 1])['pairs'] == {}


def test_the_tuning_seeds_have_a_table_of_their_own(kd_gain, tmp_path):
    """A tune-split record fills the kd-gain-tune block only: tuning
    figures never stand in the held-out table."""
    from mmrskd.engine.sweep.tables import update_kd_gain_readmes
    pair = dict(method='ltd', data=dict(format='nwpu', num_images=10),
                metric='m/mAP', teacher='t.py', student='s.py',
                arms=dict(ltd='l.py'))
    arms = dict(student={0: _result('student', 0, 0.40)},
                ltd={0: _result('ltd', 0, 0.43)})
    record = dict(split='tune', seeds=[0], commit='abc', wall_seconds=60.0,
                  pairs=dict(p=kd_gain.pair_record(
                      pair, _result('t', 0, 0.6), arms)))
    readme = tmp_path / 'configs' / 'ltd' / 'README.md'
    readme.parent.mkdir(parents=True)
    held_out = '<!-- kd-gain:start -->\nheld\n<!-- kd-gain:end -->\n'
    readme.write_text(held_out + '<!-- kd-gain-tune:start -->\nold\n'
                      '<!-- kd-gain-tune:end -->\n')
    update_kd_gain_readmes(record, [str(readme)], 'k')
    text = readme.read_text()
    assert text.startswith(held_out) and 'old' not in text
    assert '--split tune`, seeds 0,' in text
    assert '| 43.0 | 43.0 ± - | +3.0 ± - | - | no |' in text
    readme.write_text(held_out)
    with pytest.raises(MMRSKDError, match='kd-gain-tune:start'):
        update_kd_gain_readmes(record, [str(readme)], 'k')


def _with_variants(kd_gain, **variants):
    spec = kd_gain.load_spec(kd_gain.SPEC)
    return dict(spec['pairs']['ltd_gfl_nwpu'], variants=variants)


def test_a_variant_runs_its_arm_with_its_options_in_its_own_dir(kd_gain):
    pair = _with_variants(
        kd_gain,
        no_ccd={'cfg_options': {'model.distill_losses.loss_ccd.loss_weight':
                                0.0}},
        pkd_half={'arm': 'pkd', 'cfg_options': {'train_cfg.max_epochs': 12}})
    teacher, arms = kd_gain.pair_runs('p', pair, [0, 1], '/w')
    no_ccd, shipped = arms['no_ccd'][1], arms['ltd'][1]
    # the method's config, its options and the variant's on top
    assert no_ccd.config == shipped.config
    assert no_ccd.cfg_options == dict(
        shipped.cfg_options, **{'model.distill_losses.loss_ccd.loss_weight':
                                0.0})
    assert no_ccd.work_dir.startswith(osp.join('/w', 'p', 'no_ccd', ''))
    assert no_ccd.name.startswith('p/no_ccd/')
    assert no_ccd.work_dir != shipped.work_dir
    # another arm by name; a variant's option beats the pair's schedule
    half = arms['pkd_half'][0]
    assert half.config == pair['arms']['pkd']
    assert half.cfg_options['train_cfg.max_epochs'] == 12
    assert half.cfg_options['model.teacher_ckpt'] == \
        arms['pkd'][0].cfg_options['model.teacher_ckpt']


def test_variants_train_only_when_named(kd_gain):
    arms = dict(student=1, ltd=2, pkd=3, no_ccd=4)
    assert set(kd_gain.select_arms(arms, None, {'no_ccd': {}})) == {
        'student', 'ltd', 'pkd'}
    assert set(kd_gain.select_arms(arms, ['student', 'no_ccd'],
                                   {'no_ccd': {}})) == {'student', 'no_ccd'}


def test_a_variant_is_paired_with_the_student_once_it_has_runs(kd_gain):
    pair = dict(method='ltd', data=dict(format='nwpu', num_images=10),
                metric='m/mAP', teacher='configs/t.py',
                student='configs/s.py', arms=dict(ltd='configs/l.py'),
                variants=dict(a=dict(cfg_options={'x': 1}),
                              b=dict(cfg_options={'y': 2})))
    values = dict(student={0: 0.40, 1: 0.42}, ltd={0: 0.41, 1: 0.44},
                  a={0: 0.45, 1: 0.46}, b={})
    arms = {arm: {s: _result(arm, s, v) for s, v in vals.items()}
            for arm, vals in values.items()}
    record = kd_gain.pair_record(pair, _result('t', 0, 0.6), arms)
    assert set(record['arms']) == {'student', 'ltd', 'a'}
    assert record['variants'] == {'a': dict(arm='ltd',
                                            cfg_options={'x': 1})}
    # a gains 5 and 4: mean 4.5, std sqrt(1/2), se 1/2, t 9
    assert record['gains']['a']['mean'] == pytest.approx(4.5)
    assert record['gains']['a']['t'] == pytest.approx(9.0)
    assert set(record['gains']) == {'ltd', 'a'}


@pytest.mark.parametrize('variants, match', [
    (dict(pkd={'cfg_options': {}}), 'variants.pkd: "pkd" is an arm'),
    (dict(student={'cfg_options': {}}), 'variants.student: "student"'),
    (dict(v={'cfg_option': {}}), r'variants.v: expected \{cfg_options'),
    (dict(v={'arm': 'fgd', 'cfg_options': {}}), 'variants.v.arm: "fgd"'),
])
def test_bad_variants_are_one_line_errors(kd_gain, variants, match):
    pair = _with_variants(kd_gain, **variants)
    with pytest.raises(MMRSKDError, match=match):
        kd_gain.check_variants('kd_gain.yml', 'p', pair)


@pytest.mark.parametrize('key, match', [
    ('model.distill_losses.loss_ccd.loss_wieght',
     'has no "loss_wieght" at model.distill_losses.loss_ccd;'),
    ('model.distill_loses.loss_ccd.loss_weight',
     'has no "distill_loses" at model;'),
    ('param_scheduler.7.end', 'has no "7" at param_scheduler;'),
    ('train_cfg.max_epoch.x', 'has no "max_epoch" at train_cfg;'),
])
def test_a_misspelt_variant_key_is_a_one_line_error(kd_gain, key, match):
    pair = _with_variants(kd_gain, v={'cfg_options': {key: 1.0}})
    with pytest.raises(MMRSKDError,
                       match='variants.v.cfg_options: .* ' + match):
        kd_gain.check_variants('kd_gain.yml', 'p', pair)


@pytest.mark.parametrize('key', [
    'model.distill_losses.loss_ccd.loss_weight',  # a value the config has
    'param_scheduler.1.end',  # in a list, by index
    'model.grad_balance.max_factor',  # grad_balance checks its own keys
    'model.distill_losses.loss_ccd.mid_channels',  # left at its default
])
def test_a_variant_key_the_arm_can_take_is_accepted(kd_gain, key):
    pair = _with_variants(kd_gain, v={'cfg_options': {key: 1}})
    kd_gain.check_variants('kd_gain.yml', 'p', pair)


def test_every_arm_is_evaluated_like_the_student_alone(kd_gain):
    spec = kd_gain.load_spec(kd_gain.SPEC)
    pair = spec['pairs']['csakd_yolov8_dior']
    teacher, arms = kd_gain.pair_runs('p', pair, [0], '/w')
    # the CSAKD and PKD configs report COCO-style mAP50 (101-point curve);
    # the student alone VOC 11-point at IoU 0.5: the same key, another
    # number (93.4 against 95.0 for one teacher checkpoint)
    for arm in ('csakd', 'pkd', *pair['variants']):
        options = arms[arm][0].cfg_options
        assert options['val_evaluator.iou_thrs'] == 0.5, arm
        assert options['test_evaluator.iou_thrs'] == 0.5, arm
    for run in (teacher, arms['student'][0]):
        assert not any('evaluator' in key for key in run.cfg_options)


def test_an_evaluator_that_cannot_be_aligned_is_a_one_line_error(kd_gain):
    config = 'configs/pkd/pkd_yolov8-n_yolov8-s_1xb8-12e_synthetic-dior.py'
    reference = dict(val_evaluator=dict(type='RSDetMetric', iou_thrs=0.5))
    with pytest.raises(MMRSKDError, match='where: .* has val_evaluator='):
        kd_gain.evaluator_options(config, {}, reference, 'where')


def test_runs_trained_with_other_settings_are_left_out(
        kd_gain, tmp_path, monkeypatch):
    import mmrskd.engine.sweep as sweep
    from mmrskd.engine.sweep.grid import run_fingerprint
    from mmrskd.engine.sweep.executor import write_state
    config = 'configs/ltd/gfl_r18-w16_fpn_12e_synthetic-nwpu.py'
    runs = [SweepRun(f'r{i}', config, (), {'randomness.seed': i},
                     str(tmp_path / f'r{i}')) for i in range(2)]
    monkeypatch.setattr(sweep, 'collect_results', lambda runs, metric: [
        RunResult(run, 'done', final=0.5) for run in runs])
    write_state(runs[0].work_dir, status='done',
                fingerprint=run_fingerprint(runs[0]))
    write_state(runs[1].work_dir, status='done', fingerprint='other')
    results = kd_gain.current_results(runs, 'm/mAP')
    assert [r.final for r in results] == [0.5, None]


def test_the_shipped_readme_tables_match_the_shipped_results(kd_gain):
    """The kd-gain tables of the READMEs are regenerated from
    ``benchmarks/results/*.json``, never edited: after a benchmark run,
    ``tools/gen_results_tables.py --kd-gain`` (as below, without
    ``--check``) brings them up to date."""
    import sys
    sys.path.insert(0, osp.join(kd_gain.REPO, 'tools'))
    import gen_results_tables
    results = [osp.join(kd_gain.RESULTS, name)
               for name in ('kd_gain.json', 'kd_gain_tune.json')]
    assert gen_results_tables.main(['--kd-gain', *results, '--check']) == 0


def test_recorded_results_without_their_runs_are_not_overwritten(
        kd_gain, tmp_path):
    def run(name, seed):
        return SweepRun(name, f'configs/{name}.py', (), {},
                        str(tmp_path / name / f'seed={seed}'))

    layout = {'p': (run('t', 0), {'student': {0: run('s', 0),
                                              1: run('s', 1)},
                                  'admd': {0: run('a', 0)}})}
    record = dict(pairs=dict(p=dict(teacher=60.0, arms=dict(
        student={'0': 40.0, '1': 41.0}, admd={'0': 42.0}))))
    for made in ('t/seed=0', 's/seed=0', 'a/seed=0'):
        (tmp_path / made).mkdir(parents=True)
    # the student's seed 1 has a result but no run here: a rebuilt record
    # would drop it
    with pytest.raises(MMRSKDError, match=(
            r'^--out o.json: pairs.p records 1 result\(s\) with no run in '
            r'/w \(first: student, .*s/seed=1\); give --work-dir')):
        kd_gain.check_recorded_runs(record, layout, 'o.json', '/w')
    (tmp_path / 's' / 'seed=1').mkdir()
    kd_gain.check_recorded_runs(record, layout, 'o.json', '/w')
    # pairs not in the record, and other pairs, are no concern
    kd_gain.check_recorded_runs(dict(pairs={}), layout, 'o.json', '/w')
