from mmrskd.engine.runner.distill_val_loop import DistillValLoop

__all__ = ['DistillValLoop']
