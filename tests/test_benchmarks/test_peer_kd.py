"""benchmarks/peer_kd.py: our LD mapping computes mmdet's LDHead loss (the
timing is not in the suite)."""

import pytest


def test_losses_match_mmdet_ld_detector(peer_kd):
    cfg, ours, _, peer, _ = peer_kd.build_pair()
    # one image: the student's scores on the positives sum to below 1, so
    # mmdet's unclamped box-loss normalisation is exercised too
    inputs, samples = peer_kd.synthetic_batch(ours, cfg, 256, 1, 'cpu')
    losses = peer_kd.compare_losses(ours, peer, inputs, samples)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl', 'loss_ld'}
    ld = losses['loss_ld']
    assert ld['mmdet'] > 0.01
    assert ld['ours'] == pytest.approx(ld['mmdet'], rel=1e-5)
    assert losses['loss_cls']['ours'] == pytest.approx(
        losses['loss_cls']['mmdet'], rel=1e-5)
    weight_sum = ours.distill_losses.loss_ld.weight_sum.item()
    assert 0 < weight_sum < 1
    for name in ('loss_bbox', 'loss_dfl'):
        row = losses[name]
        assert row['ours'] == pytest.approx(row['mmdet'] * weight_sum,
                                            rel=1e-5)
        assert row['ours'] != pytest.approx(row['mmdet'], rel=1e-2)


def test_unknown_argument_is_a_usage_error(peer_kd, capsys):
    with pytest.raises(SystemExit) as exit_info:
        peer_kd.parse_args(['--bogus'])
    assert exit_info.value.code == 2
    assert 'unrecognized arguments: --bogus' in capsys.readouterr().err
