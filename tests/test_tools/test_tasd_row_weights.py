"""tools/analysis_tools/tasd_row_weights.py on a tiny synthetic NWPU set
with the narrow GFL LTD config and a random teacher.

At a very high weight temperature every row weighs alike, so the effective
count equals the row count; at a very low one the largest summary takes
all the weight, so it is 1.
"""
import os.path as osp
import re
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import tasd_row_weights  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'ltd',
                  'ltd_gfl_r18-w16_gfl_r34-w32_12e_synthetic-nwpu.py')
LINE = re.compile(r'loss_ld level (\d): (\d+) rows, effective ([\d.]+), '
                  r'largest weight ([\d.]+)')


@pytest.fixture(scope='module')
def nwpu_root(tmp_path_factory):
    from mmrskd.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('row_weights_nwpu')
    generate('nwpu', str(root), 8, seed=0)
    return str(root)


def run_tool(nwpu_root, capsys, *options):
    tasd_row_weights.main([
        CONFIG, '--cfg-options', 'model.teacher_ckpt=None',
        f'train_dataloader.dataset.data_root={nwpu_root}/', *options])
    return [LINE.match(line) for line in
            capsys.readouterr().out.splitlines() if LINE.match(line)]


@pytest.mark.parametrize('temperature', [1e9, 1e-4])
def test_effective_rows_at_the_temperature_extremes(temperature, nwpu_root,
                                                    capsys):
    lines = run_tool(
        nwpu_root, capsys, 'model.distill_losses.loss_tasd.terms.loss_ld.'
        f'weight_temperature={temperature}')
    assert lines, 'no level has positive rows'
    for line in lines:
        rows, effective, largest = (int(line[2]), float(line[3]),
                                    float(line[4]))
        if temperature > 1:  # uniform: every row weighs 1
            assert effective == pytest.approx(rows, abs=0.05)
            assert largest == pytest.approx(1.0, abs=0.05)
        else:  # one row holds the level's whole weight
            assert effective == pytest.approx(1.0, abs=0.05)
            assert largest == pytest.approx(rows, abs=0.05)


def test_unweighted_rows_give_a_one_line_error(nwpu_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_tool(nwpu_root, capsys)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'weight_temperature=5' in err[0]
