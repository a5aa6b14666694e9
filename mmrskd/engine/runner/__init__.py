from mmrskd.engine.runner.distill_val_loop import DistillValLoop
from mmrskd.engine.runner.resumable_epoch_based_loop import \
    ResumableEpochBasedTrainLoop

__all__ = ['DistillValLoop', 'ResumableEpochBasedTrainLoop']
