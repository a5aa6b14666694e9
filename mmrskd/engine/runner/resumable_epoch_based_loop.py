import itertools
import logging
import random

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from mmrskd.registry import LOOPS
from mmrskd.utils import MMRSKDError


class _SkipFirstBatches:
    """A batch sampler without the first ``num_skipped`` batches of
    ``batch_sampler`` (their indices are drawn, their samples never
    loaded)."""

    def __init__(self, batch_sampler, num_skipped):
        self.batch_sampler = batch_sampler
        self.num_skipped = num_skipped

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.num_skipped,
                                None)

    def __len__(self):
        return max(len(self.batch_sampler) - self.num_skipped, 0)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training that resumes exactly from any iteration.

    mmengine's :class:`~mmengine.runner.EpochBasedTrainLoop` restarts an
    interrupted epoch from its first batch, and the random state after a
    resume differs from the uninterrupted run. This loop makes a run killed
    at any point and resumed from an iteration checkpoint
    (``CheckpointHook(by_epoch=False, interval=N)``) produce the same
    weights as the uninterrupted run (bit-identical on the CPU):

    * **Data position.** On resume, the batches of the current epoch that
      were already trained are skipped. With ``skip='sampler'`` their indices
      are drawn from the epoch's sampler (shuffled by epoch as before) and
      dropped, without loading the samples. With ``skip='replay'`` they are
      loaded and discarded, as mmengine's ``IterBasedTrainLoop`` does; the
      default ``'auto'`` replays when ``num_workers > 0``, whose worker
      processes carry their own random state (seeded per epoch by mmengine's
      ``worker_init_fn``) that only replaying the same batches reproduces.
    * **Random state.** Before fetching batch ``i`` (a global iteration
      count), Python's, NumPy's and torch's global generators are seeded
      from ``(runner.seed, i)``. Random augmentation in the main process,
      random sampling in heads and assigners and dropout therefore depend on
      the iteration only, not on what ran before (validation, hooks, an
      interrupted run), and nothing extra needs to be checkpointed.

    Everything else a distiller carries is in the checkpoint already:
    weights, optimizer and parameter-scheduler states, loss-schedule and
    adaptive-weight buffers and the DDC temperature (buffers), and the
    message hub.

    Limits: with ``persistent_workers=True`` (and ``num_workers > 0``) the
    workers' random state continues across epochs, so augmentation after a
    resume differs; set ``persistent_workers=False`` for exact resume. A
    changed batch size, dataset or number of processes between the runs
    cannot be resumed exactly either.

    Args:
        skip (str): ``'auto'``, ``'sampler'`` or ``'replay'``, see above.
        Other arguments as in :class:`mmengine.runner.EpochBasedTrainLoop`.
    """

    SKIP_MODES = ('auto', 'sampler', 'replay')

    def __init__(self, runner, dataloader, max_epochs, val_begin=1,
                 val_interval=1, dynamic_intervals=None, skip='auto'):
        if skip not in self.SKIP_MODES:
            raise MMRSKDError(f'train_cfg.skip must be one of '
                              f'{self.SKIP_MODES}, got {skip!r}')
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval, dynamic_intervals)
        self.skip = skip

    def run_epoch(self):
        """Iterate over the rest of the current epoch."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        # a resumed run stops mid-epoch: its iteration count is ahead of
        # the epoch start
        idx = self._iter - self._epoch * len(self.dataloader)
        if not 0 <= idx <= len(self.dataloader):
            raise MMRSKDError(
                f'resume: the checkpoint is at iteration {self._iter} of '
                f'epoch {self._epoch + 1}, which does not fit epochs of '
                f'{len(self.dataloader)} batches; the batch size, dataset or '
                'number of processes changed since it was written')
        batches = self._epoch_batches(idx)
        while True:
            self.seed_iteration()
            try:
                data_batch = next(batches)
            except StopIteration:
                break
            self.run_iter(idx, data_batch)
            idx += 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def seed_iteration(self):
        """Seed the global generators for iteration ``self._iter``."""
        seed = int(np.random.SeedSequence(
            (self.runner.seed, self._iter)).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _epoch_batches(self, num_done):
        """An iterator over the batches of this epoch after the first
        ``num_done``."""
        loader = self.dataloader
        if num_done <= 0:
            return iter(loader)
        replay = self.skip == 'replay' or loader.batch_sampler is None or (
            self.skip == 'auto' and loader.num_workers > 0)
        print_log(
            f'resuming mid-epoch: {"replaying" if replay else "skipping"} '
            f'the {num_done} batches of epoch {self._epoch + 1} trained '
            'before the checkpoint', logger='current')
        if loader.num_workers > 0 and loader.persistent_workers:
            print_log(
                'persistent_workers=True: the data workers\' random state '
                'is not that of the interrupted run, so random augmentation '
                'differs from it after this resume; set persistent_workers='
                'False for exact resume', logger='current',
                level=logging.WARNING)
        if replay:
            batches = iter(loader)
            for _ in range(num_done):
                next(batches)
            return batches
        # a loader of the same dataset and workers over the remaining batch
        # indices (a DataLoader's sampler cannot be swapped)
        partial = DataLoader(
            loader.dataset,
            batch_sampler=_SkipFirstBatches(loader.batch_sampler, num_done),
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            timeout=loader.timeout,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context,
            generator=loader.generator,
            prefetch_factor=loader.prefetch_factor,
            persistent_workers=False,
            pin_memory_device=loader.pin_memory_device)
        return iter(partial)
