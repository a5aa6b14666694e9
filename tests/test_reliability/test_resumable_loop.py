"""ResumableEpochBasedTrainLoop on a toy model whose data augmentation
(NumPy, in the dataset) and dropout (torch, in the model) are random:
resuming from a mid-epoch iteration checkpoint gives the weights of the
uninterrupted run, with and without data workers."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import safe_load


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x, mode='loss'):
        return dict(loss=self.drop(self.fc(x)).pow(2).mean())


class _AugmentedData(Dataset):
    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 8

    def __getitem__(self, index):
        noise = np.random.normal(size=4).astype(np.float32)
        return dict(x=torch.full((4, ), float(index)) + torch.from_numpy(
            noise))


def _runner(work_dir, num_workers=0, skip='auto', batch_size=2,
            resume_from=None):
    return Runner(
        model=_Toy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_AugmentedData(), batch_size=batch_size,
            num_workers=num_workers, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=2,
                       skip=skip),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=False, interval=3)),
        randomness=dict(seed=0),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmrskd')


def _weights(path):
    return safe_load(path)['state_dict']


@pytest.mark.parametrize('num_workers, skip, exact', [
    (0, 'auto', True),     # batch indices skipped, nothing loaded
    (2, 'auto', True),     # replayed: the workers' random state matches
    (2, 'sampler', False),  # skipped: the workers start afresh
])
def test_mid_epoch_resume_matches_the_uninterrupted_run(
        tmp_path, num_workers, skip, exact):
    _runner(tmp_path / 'full', num_workers, skip).train()
    expected = _weights(tmp_path / 'full' / 'iter_8.pth')
    # iter_3: three of the four batches of epoch 1 are done
    resumed = _runner(tmp_path / 'resumed', num_workers, skip,
                      resume_from=str(tmp_path / 'full' / 'iter_3.pth'))
    resumed.train()
    actual = _weights(tmp_path / 'resumed' / 'iter_8.pth')
    same = all(torch.equal(expected[k], actual[k]) for k in expected)
    assert same == exact


def test_checkpoint_from_other_epoch_lengths_is_refused(tmp_path):
    _runner(tmp_path / 'full').train()
    resumed = _runner(tmp_path / 'resumed', batch_size=4,
                      resume_from=str(tmp_path / 'full' / 'iter_3.pth'))
    with pytest.raises(MMRSKDError, match='iteration 3 of epoch 1, which '
                       'does not fit epochs of 2 batches'):
        resumed.train()


def test_unknown_skip_mode_is_a_config_error(tmp_path):
    with pytest.raises(MMRSKDError, match="train_cfg.skip must be one of"):
        _runner(tmp_path, skip='fast').train()
