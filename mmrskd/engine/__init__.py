from mmrskd.engine import hooks, optimizers, runner

__all__ = ['hooks', 'optimizers', 'runner']
