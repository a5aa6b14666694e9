import glob
import logging
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmrskd.registry import HOOKS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.checkpoint import (AtomicLocalBackend,
                                     UnsafeCheckpointError,
                                     atomic_write_bytes, safe_load)

ATOMIC_LOCAL_BACKEND = 'mmrskd_atomic_local'
register_backend(ATOMIC_LOCAL_BACKEND, AtomicLocalBackend, force=True)


def unreadable_reason(path):
    """Why ``path`` cannot be resumed from, or None if it can.

    Raises:
        UnsafeCheckpointError: the file carries a pickle payload; that is an
            attack, not a crash, and must stop the run.
    """
    try:
        checkpoint = safe_load(path)
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # truncated, corrupt, missing: all unreadable
        return str(err) or type(err).__name__
    if not isinstance(checkpoint, dict) or not {'meta', 'state_dict'} <= set(
            checkpoint):
        return 'not a training checkpoint (no meta and state_dict)'
    return None


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` that a crash at any moment
    cannot leave without a checkpoint to resume from.

    * Every file it writes (checkpoints, best checkpoints and
      ``last_checkpoint``) goes to a hidden temporary file that is fsynced
      and renamed (:class:`~mmrskd.utils.checkpoint.AtomicLocalBackend`):
      a reader sees the previous file or the complete new one.
    * Checkpoints beyond ``max_keep_ckpts`` are deleted only after the new
      checkpoint and ``last_checkpoint`` are in place. (mmengine deletes
      first: killed while writing with ``max_keep_ckpts=1``, it leaves no
      checkpoint.)
    * Auto-resume (``--resume`` without a path) loads the checkpoint that
      ``last_checkpoint`` names first; if it is unreadable (truncated by a
      non-atomic writer, corrupt, deleted), it warns and resumes from the
      newest readable checkpoint of the same folder instead. A checkpoint
      with a pickle payload is not skipped: the run stops with
      :class:`~mmrskd.utils.checkpoint.UnsafeCheckpointError`.

    Arguments are those of :class:`~mmengine.hooks.CheckpointHook`. An
    ``out_dir`` on a remote backend (``s3://``, ...) keeps that backend:
    object stores replace objects atomically.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        local = self.out_dir is None or '://' not in str(self.out_dir)
        if local and self.backend_args is None and \
                self.file_client_args is None:
            self.backend_args = dict(backend=ATOMIC_LOCAL_BACKEND)

    def before_run(self, runner):
        # mmengine reads these in load_or_resume(), right after before_run
        if runner._resume and runner._load_from is None:
            fallback = self._readable_latest_checkpoint(runner.work_dir)
            if fallback is not None:
                runner._load_from = fallback

    def _readable_latest_checkpoint(self, work_dir):
        """The checkpoint auto-resume should use when the one
        ``last_checkpoint`` names is unreadable; None when it is fine (or
        there is nothing to resume)."""
        pointer_file = osp.join(work_dir, 'last_checkpoint')
        if not osp.isfile(pointer_file):
            return None
        with open(pointer_file, encoding='utf-8', errors='replace') as f:
            latest = f.read().strip()
        reason = unreadable_reason(latest) if latest else \
            f'{pointer_file} is empty'
        if reason is None:
            return None
        folder = osp.dirname(latest) if latest else work_dir
        candidates = sorted(
            (p for p in glob.glob(osp.join(folder, '*.pth'))
             if osp.abspath(p) != osp.abspath(latest or '')),
            key=lambda p: (osp.getmtime(p), p), reverse=True)
        for candidate in candidates:
            if unreadable_reason(candidate) is None:
                print_log(
                    f'resume: {latest or pointer_file} is unreadable '
                    f'({reason}); resuming from {candidate}, the newest '
                    f'readable checkpoint in {folder}',
                    logger='current', level=logging.WARNING)
                return candidate
        raise MMRSKDError(
            f'resume: {latest or pointer_file} is unreadable ({reason}) and '
            f'no other checkpoint in {folder} is readable; train without '
            '--resume, or pass --resume PATH')

    def _save_checkpoint_with_step(self, runner, step, meta):
        """As mmengine's, with the expired checkpoint deleted last."""
        expired = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_bytes(
            str(self.last_ckpt).encode('utf-8'),
            osp.join(runner.work_dir, 'last_checkpoint'))
        if expired is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(expired))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are folders
                self.file_backend.rmtree(path)
