"""The README's main job: teacher, student alone and distilled student on
synthetic DOTA-format data, on the CPU.

    python tools/demo.py

1. writes a synthetic DOTA v1.0 dataset (raw labelTxt with headers) to
   ``data/synthetic/dota`` unless it is already there;
2. trains the teacher (Rotated RetinaNet, ResNet-18 at width 16, for twice
   the student's epochs);
3. trains the student alone (the same architecture, the normal schedule);
4. distils the teacher into the same student (PKD on the FPN levels), with
   the same schedule and seed;
5. prints teacher / student / distilled mAP (mmrotate's DOTAMetric, VOC07
   mAP@0.5 on the held-out val images).

Finished stages are reused on a second run (``--force`` retrains them).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_ROOT = 'data/synthetic/dota'
DEMO = 'configs/demo'
# (stage, config, epochs as a multiple of --epochs)
STAGES = (
    ('teacher', f'{DEMO}/rotated-retinanet_r18-w16_24e_synthetic-dota.py', 2),
    ('student', f'{DEMO}/rotated-retinanet_r18-w16_12e_synthetic-dota.py', 1),
    ('distilled', f'{DEMO}/pkd_rotated-retinanet_r18-w16_rotated-retinanet'
     '_r18-w16-24e_12e_synthetic-dota.py', 1),
)
METRIC = 'dota/mAP'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-images', type=int, default=200,
                        help='synthetic images (80%% train, 20%% val)')
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='retrain stages that already finished')
    return parser.parse_args(argv)


def make_data(num_images, seed):
    stamp = osp.join(DATA_ROOT, '.demo-data')
    wanted = f'{num_images} {seed}'
    if osp.isfile(stamp) and open(stamp).read() == wanted:
        print(f'[demo] reusing {DATA_ROOT}')
        return
    subprocess.run([
        sys.executable, 'tools/misc/make_synthetic_data.py', '--format',
        'dota', '--out', DATA_ROOT, '--num-images', str(num_images),
        '--seed', str(seed), '--overwrite'
    ], check=True)
    with open(stamp, 'w') as f:
        f.write(wanted)


def last_metric(work_dir):
    """The last validation value of :data:`METRIC` logged in ``work_dir``."""
    value = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if METRIC in record:
                    value = record[METRIC]
    return value


def run_quietly(command, log_path):
    """Run ``command``, keep its whole output in ``log_path`` and echo only
    the progress lines (iteration, ETA, loss) and the evaluation table."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    shown = ('Epoch(train)', 'Epoch(val)', '| ', '+-')
    with open(log_path, 'w') as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            if any(key in line for key in shown):
                # drop mmengine's "date time - mmengine - INFO - " prefix
                text = line.rstrip().split(' - INFO - ')[-1]
                print('   ', text[:150], flush=True)
        if process.wait() != 0:
            with open(log_path) as f:
                sys.stdout.write(''.join(f.readlines()[-40:]))
            sys.exit(f'[demo] failed: {" ".join(command)} (log: {log_path})')


def train(name, config, work_dir, epochs, seed, force, extra=()):
    checkpoint = osp.join(work_dir, f'epoch_{epochs}.pth')
    if not force and osp.isfile(checkpoint) and last_metric(
            work_dir) is not None:
        print(f'[demo] {name}: reusing {checkpoint}')
        return checkpoint
    print(f'[demo] training the {name}: {config}', flush=True)
    start = time.time()
    run_quietly([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--cfg-options', f'train_cfg.max_epochs={epochs}',
        f'train_cfg.val_interval={epochs}', f'randomness.seed={seed}',
        f'param_scheduler.1.end={epochs}', *extra
    ], osp.join(work_dir, 'train.log'))
    print(f'[demo] {name} trained in {time.time() - start:.0f} s', flush=True)
    return checkpoint


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)
    start = time.time()
    make_data(args.num_images, args.seed)
    results = {}
    teacher_ckpt = None
    for name, config, epoch_factor in STAGES:
        work_dir = osp.join(args.work_dir, name)
        extra = (f'model.teacher_ckpt={teacher_ckpt}', ) \
            if name == 'distilled' else ()
        checkpoint = train(name, config, work_dir, args.epochs * epoch_factor,
                           args.seed, args.force, extra)
        if name == 'teacher':
            teacher_ckpt = checkpoint
        results[name] = last_metric(work_dir)

    student, distilled = results['student'], results['distilled']
    print('\nmmrskd demo: synthetic DOTA v1.0 val, VOC07 mAP@0.5 '
          '(mmrotate DOTAMetric)')
    print(f'| {"model":<34} | {"mAP":>6} |')
    print(f'|{"-" * 36}|{"-" * 8}|')
    rows = [('teacher  R18-w16, 2x epochs', results['teacher']),
            ('student  R18-w16 alone', student),
            ('student  R18-w16 distilled (PKD)', distilled)]
    for label, value in rows:
        print(f'| {label:<34} | {value:>6.4f} |')
    print(f'gain from distillation: {distilled - student:+.4f} mAP '
          f'(same student, schedule and seed); total {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
