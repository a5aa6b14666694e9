"""tools/analysis_tools/tal_targets.py: the per-object soft targets of a
task-aligned assignment, checked by hand, and the tool on a tiny synthetic
DIOR set."""
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import tal_targets  # noqa: E402


def test_object_targets_by_hand():
    # one image, 4 points, objects 0 and 1 valid, 2 padding; points 0-1
    # belong to object 0 (targets 0.3, 0.5), point 3 to object 1 whose
    # target is 0: assigned but with no signal
    scores = torch.zeros(1, 4, 3)
    scores[0, 0, 2], scores[0, 1, 2] = 0.3, 0.5
    assigned = dict(fg_mask=torch.tensor([[True, True, False, True]]),
                    gt_inds=torch.tensor([[0, 0, 0, 1]]), scores=scores)
    objects = tal_targets.object_targets(
        assigned, torch.tensor([[2, 1, 0]]),
        torch.tensor([[True, True, False]]))
    assert objects == [(2, 2, 0.5), (1, 1, 0.0)]


def test_class_lines_by_hand():
    objects = [(0, 2, 0.5), (0, 4, 0.0), (1, 1, 0.9)]
    lines = tal_targets.class_lines(objects, ['a', 'b', 'c'], 0.01)
    # a: 2 objects, 3 positives each on average, target 0.25, half below
    assert lines[1].split() == ['a', '2', '3.0', '0.250', '0.50']
    assert lines[2].split() == ['b', '1', '1.0', '0.900', '0.00']
    assert lines[3].split() == ['c', '0']


@pytest.fixture(scope='module')
def dior_root(tmp_path_factory):
    from mmrskd.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('tal_dior')
    generate('dior', str(root), 8, seed=0)
    return str(root)


def test_the_tool_counts_every_object_of_its_batches(dior_root, capsys):
    from mmengine.runner import Runner, set_random_seed

    from mmrskd.utils import register_all_modules
    from mmrskd.utils.cli import load_tool_config
    config = osp.join(REPO, 'configs', 'yolov8',
                      'yolov8_n_1xb8-12e_synthetic-dior.py')
    options = [f'train_dataloader.dataset.dataset.datasets.{i}.data_root='
               f'{dior_root}/' for i in (0, 1)]
    tal_targets.main([config, '--num-batches', '1', '--cfg-options',
                      *options])
    rows = capsys.readouterr().out.splitlines()[1:]
    register_all_modules()
    cfg = load_tool_config(config, dict(o.split('=') for o in options))
    set_random_seed(0)  # as the tool does: the same mosaics
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader,
                                              seed=0)))
    labels = torch.cat([s.gt_instances.labels for s in batch['data_samples']])
    classes = [row.split()[0] for row in rows]
    counts = {row.split()[0]: int(row.split()[1]) for row in rows}
    assert len(rows) == len(classes) == 5
    assert [counts[c] for c in classes] == [
        int((labels == i).sum()) for i in range(len(classes))]


def test_a_head_without_task_aligned_assignment_is_a_one_line_error(capsys):
    config = osp.join(REPO, 'configs', 'ltd',
                      'gfl_r18-w16_fpn_12e_synthetic-nwpu.py')
    with pytest.raises(SystemExit):
        tal_targets.main([config])
    assert 'has no BatchTaskAlignedAssigner' in capsys.readouterr().err
