"""Teacher → student distillation of any mmdet/mmrotate detector, by config.

::

    inputs ─┬─> teacher (frozen, no_grad, stops after its last tap) ─> taps T ─┐
            │                                                             │
            └─> student.loss() ──> detection losses                       ├─> mappings ─> distill losses
                       └──────────> taps S ─> connectors ─────────────────┤      (× schedules)
                                    taps S ─> teacher modules (cross) ─────┘

The teacher is kept out of the module tree, so it is not in ``parameters()``,
the optimizer, DDP or ``state_dict()``: checkpoints hold the student, the
connectors, the distillation losses' own parameters and schedule states.
"""
import copy

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from mmrskd.models.distillers.cross_forward import (parse_cross_forwards,
                                                    run_cross_forward)
from mmrskd.models.distillers.gradient_probe import (GradientBalance,
                                                    GradientProbe)
from mmrskd.models.distillers.loss_mapping import (BATCH_SOURCES,
                                                   check_pair_shapes,
                                                   parse_loss_mappings,
                                                   select, shapes)
from mmrskd.models.distillers.model_config import resolve_model_cfg
from mmrskd.models.distillers.taps import TapsComplete, TapSet, TapSpec
from mmrskd.models.distillers.teacher import build_teacher, check_pairing
from mmrskd.registry import MODELS, TASK_UTILS
from mmrskd.utils import MMRSKDError
from mmrskd.utils.rng import preserved_rng_state


@MODELS.register_module()
class SingleTeacherDistiller(BaseModel):
    """Distil a frozen teacher detector into a student detector.

    Args:
        student (dict | str): model dict, config path (local,
            ``mmrskd::``, ``mmdet::``, ``mmrotate::``) or
            ``dict(cfg_path=..., **model_overrides)``.
        teacher (dict | str): the same, for the teacher.
        teacher_ckpt (str | None): local path or URL of the teacher weights,
            loaded weights-only. None keeps a random teacher (tests only).
        taps (dict[str, str | dict]): named records of module outputs/inputs
            or method results, see :mod:`mmrskd.models.distillers.taps`.
        connectors (dict[str, dict]): trainable adapters, by name.
        cross_forwards (dict[str, dict]): run frozen teacher modules on
            student values with gradient (CrossKD-style), by name:
            ``dict(source=<source>, modules=['bbox_head.cls_convs.3', ...],
            per_level=False, align_to=None)``; ``align_to=<teacher source>``
            gives each channel of the source the mean and std of the same
            channel of the teacher value first (CrossKD's ``align_scale``).
            Results are sources for the mappings.
        distill_losses (dict[str, dict]): registered losses by name; names
            must contain ``'loss'`` so mmengine backpropagates them. A loss
            with ``term_names`` (e.g. :class:`LTDTASDLoss`) returns a dict
            of those terms, logged, scheduled (all with its schedule) and
            balanced under their own names. A loss with ``precompute`` and
            ``precompute_args`` (e.g. :class:`LTDTASDLoss`'s regions) has
            ``precompute`` run on those mapped arguments between the
            teacher's and the student's forward, when they all map to
            teacher taps or the batch; its result goes to the loss's
            forward as keyword arguments.
        loss_mappings (dict[str, dict]): loss argument → source, see
            :mod:`mmrskd.models.distillers.loss_mapping`.
        loss_schedules (dict[str, dict]): weight schedules by loss name.
        teacher_early_exit (bool): stop the teacher forward as soon as all
            its taps have fired. Defaults to True.
        allow_class_mismatch (bool): allow teacher and student heads with
            different class counts. Defaults to False.
        grad_probe (dict, optional): ``dict(modules=['student.neck'],
            interval=50)`` logs each loss term's gradient norm at those
            student modules (:class:`GradientProbe`). Defaults to None.
        grad_balance (dict, optional): ``dict(target_ratio=0.5,
            modules=['student.neck'], interval=10, momentum=0.9,
            max_factor=10, calibration_iters=None)`` scales each distillation term to
            ``target_ratio`` of the detection gradient at those modules
            (:class:`GradientBalance`): the rule that transfers paper loss
            weights to detectors that sum their losses differently. Losses
            whose ``rescalable`` is False keep their weight.
            Defaults to None (the configured weights as they are).
        data_preprocessor: unused; the student's preprocessor is used.
        init_cfg (dict | None): initialisation config.
    """

    def __init__(self,
                 student,
                 teacher,
                 teacher_ckpt=None,
                 taps=None,
                 connectors=None,
                 cross_forwards=None,
                 distill_losses=None,
                 loss_mappings=None,
                 loss_schedules=None,
                 teacher_early_exit=True,
                 allow_class_mismatch=False,
                 grad_probe=None,
                 grad_balance=None,
                 data_preprocessor=None,
                 init_cfg=None):
        student = MODELS.build(resolve_model_cfg(student, 'student'))
        super().__init__(data_preprocessor=student.data_preprocessor,
                         init_cfg=init_cfg)
        self.student = student
        # Everything built after the student draws from a forked RNG, so the
        # student's init_weights() and the data order that follow see the
        # same random state as when the student trains alone: runs of one
        # seed are paired (see benchmarks/kd_gain.py).
        with preserved_rng_state():
            self._build_distillation(
                teacher, teacher_ckpt, taps, connectors, cross_forwards,
                distill_losses, loss_mappings, loss_schedules,
                teacher_early_exit, allow_class_mismatch)
        self.predict_with = 'student'
        self._first_step_checked = False
        self.grad_probe = None if grad_probe is None else GradientProbe(
            self, **grad_probe)
        self.grad_balance = None if grad_balance is None else \
            GradientBalance.build(self, self.term_losses(), **grad_balance)

    def _build_distillation(self, teacher, teacher_ckpt, taps, connectors,
                            cross_forwards, distill_losses, loss_mappings,
                            loss_schedules, teacher_early_exit,
                            allow_class_mismatch):
        # A plain attribute: not a submodule, so never trained or saved.
        object.__setattr__(self, 'teacher', build_teacher(
            teacher, teacher_ckpt))
        self.teacher_ckpt = teacher_ckpt
        check_pairing(self.student, self.teacher, allow_class_mismatch)

        specs = [TapSpec.parse(name, spec)
                 for name, spec in (taps or {}).items()]
        self.student_taps = TapSet(
            self.student, [s for s in specs if s.model == 'student'])
        self.teacher_taps = TapSet(
            self.teacher, [s for s in specs if s.model == 'teacher'])
        self.teacher_early_exit = teacher_early_exit

        self.connectors = nn.ModuleDict(
            {name: MODELS.build(cfg) for name, cfg in (connectors or {}).items()})
        self.cross_forwards = parse_cross_forwards(cross_forwards or {},
                                                   self.teacher)

        distill_losses = distill_losses or {}
        for name in distill_losses:
            if 'loss' not in name:
                raise MMRSKDError(
                    f'distill_losses.{name}: mmengine only backpropagates '
                    f'outputs whose name contains "loss"; rename it, e.g. '
                    f'"loss_{name}"')
        self.distill_losses = nn.ModuleDict(
            {name: MODELS.build(cfg) for name, cfg in distill_losses.items()})
        # a loss with term_names returns a dict of those terms; they are
        # the logged names
        self.distill_terms = {
            name: tuple(getattr(loss, 'term_names', (name, )))
            for name, loss in self.distill_losses.items()
        }
        self.distill_term_names = [
            term for terms in self.distill_terms.values() for term in terms
        ]
        repeated = sorted({term for term in self.distill_term_names
                           if self.distill_term_names.count(term) > 1})
        if repeated:
            raise MMRSKDError(f'distill_losses: terms {repeated} are logged '
                              'by more than one loss; rename them')
        self.loss_mappings = parse_loss_mappings(
            loss_mappings or {}, self.distill_losses,
            [s.name for s in specs] + list(self.cross_forwards),
            self.connectors.keys())

        teacher_side = {spec.name for spec in self.teacher_taps.specs}
        teacher_side.update(BATCH_SOURCES)
        self.precomputing_losses = [
            name for name, loss in self.distill_losses.items()
            if hasattr(loss, 'precompute') and all(
                source.name in teacher_side
                for arg, source in self.loss_mappings[name].items()
                if arg in loss.precompute_args)
        ]

        loss_schedules = loss_schedules or {}
        unknown = set(loss_schedules) - set(self.distill_losses)
        if unknown:
            raise MMRSKDError(
                f'loss_schedules: {sorted(unknown)} name no distill loss; '
                f'known losses: {sorted(self.distill_losses)}')
        self.loss_schedules = nn.ModuleDict({
            name: TASK_UTILS.build(cfg) for name, cfg in loss_schedules.items()
        })

    def init_weights(self):
        # The student first, then the rest from a forked RNG (see __init__):
        # the random state after init is the student alone's.
        self.student.init_weights()
        with preserved_rng_state():
            super().init_weights()  # skips the initialised student
            if self.teacher_ckpt is None:
                # its own init (e.g. pretrained backbone), without a checkpoint
                self.teacher.init_weights()

    # ------------------------------------------------------------ nn.Module
    def __getattr__(self, name):
        # Hooks written for detectors (e.g. mmdet's YOLOXModeSwitchHook sets
        # model.bbox_head.use_l1) reach the student's submodules.
        try:
            return super().__getattr__(name)
        except AttributeError:
            student = self.__dict__['_modules'].get('student')
            if student is not None and name in student._modules:
                return student._modules[name]
            raise

    def __deepcopy__(self, memo):
        # Copies of the model (EMAHook's averaged model) share the frozen
        # teacher instead of holding a second one.
        memo[id(self.teacher)] = self.teacher
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            copied.__dict__[key] = copy.deepcopy(value, memo)
        return copied

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda()/.half() must move the teacher too.
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise MMRSKDError(f'Invalid mode "{mode}": use loss, predict or tensor')

    def predict(self, inputs, data_samples=None):
        """Predictions of the student (or of the teacher while a val loop
        sets ``predict_with='teacher'``)."""
        model = self.teacher if self.predict_with == 'teacher' else self.student
        return model.predict(inputs, data_samples)

    # ------------------------------------------------------------- training
    def run_teacher(self, inputs, data_samples):
        """Fill the teacher taps: no autograd graph, and no further than the
        last tapped module when ``teacher_early_exit``."""
        taps = self.teacher_taps
        if not taps.specs:
            return
        with torch.no_grad(), taps.recording(self.teacher_early_exit):
            try:
                if hasattr(self.teacher, 'extract_feat') and hasattr(
                        self.teacher, 'bbox_head'):
                    # Call the head, not head.forward, so its hooks fire.
                    self.teacher.bbox_head(self.teacher.extract_feat(inputs))
                else:
                    self.teacher._forward(inputs, data_samples)
            except TapsComplete:
                pass

    def loss(self, inputs, data_samples):
        """Detection losses of the student plus the distillation losses.

        Returns:
            dict[str, Tensor]: every value whose key contains ``'loss'`` is
            backpropagated by mmengine.
        """
        try:
            self.run_teacher(inputs, data_samples)
            context = dict(gt_instances=[s.gt_instances for s in data_samples],
                           img_metas=[s.metainfo for s in data_samples],
                           data_samples=data_samples, inputs=inputs)
            precomputed = self.precompute_losses(context)
            with self.student_taps.recording():
                losses = self.student.loss(inputs, data_samples)
            if not self._first_step_checked:
                self._check_taps_and_names(losses)
            distill_losses = self.distillation_losses(context, precomputed)
            if self.grad_probe is not None and self.training:
                self.grad_probe(losses, distill_losses)
            if self.grad_balance is not None and self.training:
                distill_losses = self.grad_balance(losses, distill_losses,
                                                   self.schedule_weights)
            losses.update(distill_losses)
            self._first_step_checked = True
        finally:
            self.student_taps.clear()
            self.teacher_taps.clear()
        return losses

    def term_losses(self):
        """The loss module of every logged distillation term."""
        return {term: self.distill_losses[name]
                for name, terms in self.distill_terms.items()
                for term in terms}

    def precompute_losses(self, context):
        """Run ``precompute`` of the losses in :attr:`precomputing_losses`
        on their teacher-side mapped arguments; by loss name."""
        cache = {}
        precomputed = {}
        for name in self.precomputing_losses:
            loss = self.distill_losses[name]
            mapping = self.loss_mappings[name]
            precomputed[name] = loss.precompute(**{
                arg: self._resolve(mapping[arg], context, cache)
                for arg in loss.precompute_args if arg in mapping
            })
        return precomputed

    def distillation_losses(self, context, precomputed=None):
        """Evaluate every mapped, scheduled distillation loss once, with the
        keyword arguments ``precomputed`` holds for it (by loss name, from
        :meth:`precompute_losses`).

        Returns:
            dict[str, Tensor]: by term name (:attr:`distill_term_names`):
            the loss name, or each term of a loss that returns a dict.
        """
        cur_iter, max_iters = self._progress()
        cache = {}
        losses = {}
        self.schedule_weights = {}
        for name, loss in self.distill_losses.items():
            schedule = self.loss_schedules[name] \
                if name in self.loss_schedules else None
            weight = 1.0 if schedule is None else schedule(cur_iter, max_iters)
            self.schedule_weights.update(
                dict.fromkeys(self.distill_terms[name], weight))
            if weight == 0:
                losses.update({
                    term: context['inputs'].new_zeros(()).float()
                    for term in self.distill_terms[name]
                })
                continue
            kwargs = {arg: self._resolve(source, context, cache)
                      for arg, source in self.loss_mappings[name].items()}
            if not self._first_step_checked:
                check_pair_shapes(name, kwargs)
            value = loss(**kwargs, **(precomputed or {}).get(name, {}))
            terms = value if isinstance(value, dict) else {name: value}
            terms = {term: term_value * weight
                     for term, term_value in terms.items()}
            if schedule is not None:
                schedule.update(sum(terms.values()).detach())
            losses.update(terms)
        return losses

    @staticmethod
    def _progress():
        hub = MessageHub.get_current_instance()
        return hub.get_info('iter', 0), hub.get_info('max_iters', 0)

    def _lookup(self, name, context, cache):
        if name in BATCH_SOURCES:
            return context[name]
        if name in self.student_taps.records:
            return self.student_taps.records[name]
        if name in self.teacher_taps.records:
            return self.teacher_taps.records[name]
        if name in self.cross_forwards:
            return self._cross_forward(name, context, cache)
        raise MMRSKDError(f'source "{name}" recorded nothing this step')

    def _resolve(self, source, context, cache):
        key = ('source', source)
        if key not in cache:
            value = select(self._lookup(source.name, context, cache),
                           source.index)
            if source.connector is not None:
                try:
                    value = self.connectors[source.connector](value)
                except RuntimeError as err:
                    # first step: a shape mismatch is a config error
                    if self._first_step_checked or isinstance(
                            err, torch.OutOfMemoryError):
                        raise
                    raise MMRSKDError(
                        f'connectors.{source.connector} cannot take '
                        f'{source.name} of shapes {shapes(value)} '
                        f'({str(err).splitlines()[0]}); set its in_channels '
                        'to the student\'s channels') from None
            if source.detach:
                value = type(value)(v.detach() for v in value) if isinstance(
                    value, (tuple, list)) else value.detach()
            cache[key] = value
        return cache[key]

    def _cross_forward(self, name, context, cache):
        key = ('cross', name)
        if key not in cache:
            cache[key] = run_cross_forward(
                name, self.cross_forwards[name], self.teacher,
                lambda source: self._resolve(source, context, cache))
        return cache[key]

    def _check_taps_and_names(self, student_losses):
        """First batch, before any optimizer step: every tap fired and no
        distillation loss hides a student loss."""
        for taps in (self.student_taps, self.teacher_taps):
            for spec in taps.specs:
                if spec.name not in taps.records:
                    raise MMRSKDError(
                        f'taps.{spec.name}: {spec.model}.{spec.path} did not '
                        f'run during the training forward (its '
                        f'{type(getattr(self, spec.model)).__name__} never '
                        'calls it in this mode); tap a module that runs')
        clashes = set(student_losses) & set(self.distill_term_names)
        if clashes:
            raise MMRSKDError(f'distill_losses {sorted(clashes)} share a name '
                              'with the student\'s own losses; rename them')
