from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop

from mmrskd.registry import LOOPS
from mmrskd.utils import MMRSKDError


@LOOPS.register_module()
class DistillValLoop(ValLoop):
    """Validate the student; optionally the teacher too, logged as
    ``teacher/<metric>``.

    Args:
        teacher_eval (str): ``'once'`` (first validation only, the default),
            ``'always'`` or ``'never'``.
        Other arguments as in :class:`mmengine.runner.ValLoop`.
    """

    MODES = ('once', 'always', 'never')

    def __init__(self, runner, dataloader, evaluator, fp16=False,
                 teacher_eval='once'):
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        if teacher_eval not in self.MODES:
            raise MMRSKDError(f'val_cfg.teacher_eval must be one of '
                              f'{self.MODES}, got {teacher_eval!r}')
        self.teacher_eval = teacher_eval
        self._teacher_evaluated = False

    def run(self):
        if self.teacher_eval == 'always' or (self.teacher_eval == 'once' and
                                             not self._teacher_evaluated):
            self.evaluate_teacher()
        return super().run()

    def evaluate_teacher(self):
        """Run the val set through the teacher, without val hooks, so best
        checkpoints and early stopping keep following the student."""
        model = self.runner.model
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, 'predict_with'):
            raise MMRSKDError('val_cfg: DistillValLoop needs a distiller '
                              f'model, got {type(model).__name__}')
        self.runner.model.eval()
        model.predict_with = 'teacher'
        try:
            for data_batch in self.dataloader:
                outputs = self.runner.model.val_step(data_batch)
                self.evaluator.process(data_samples=outputs,
                                       data_batch=data_batch)
            metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        finally:
            model.predict_with = 'student'
        metrics = {f'teacher/{key}': value for key, value in metrics.items()}
        self.runner.logger.info('teacher: ' + '  '.join(
            f'{key}: {value:.4f}' if isinstance(value, float) else
            f'{key}: {value}' for key, value in metrics.items()))
        self.runner.message_hub.update_info('teacher_metrics', metrics)
        self.runner.visualizer.add_scalars(
            {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            step=self.runner.iter)
        self._teacher_evaluated = True
        return metrics
