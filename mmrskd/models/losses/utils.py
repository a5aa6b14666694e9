"""Input handling shared by the distillation losses.

Every distillation loss accepts one tensor or a list/tuple of per-level
tensors for ``preds_S``/``preds_T`` (and, per level, for ``mask`` and
``weight``). These helpers pair the levels, check shapes, cast to fp32 (AMP
may hand over fp16/bf16) and detach the teacher side, so each loss only
writes its formula for one level.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from mmrskd.utils import MMRSKDError

MultiLevelTensor = Union[Tensor, Sequence[Tensor]]


def _shape(tensor: Tensor) -> str:
    return str(tuple(tensor.shape))


def as_levels(loss_name: str, arg_name: str,
              preds: MultiLevelTensor) -> List[Tensor]:
    """One side's levels as a list: a tensor is one level."""
    if isinstance(preds, Tensor):
        return [preds]
    if not isinstance(preds, (list, tuple)) or not preds or not all(
            isinstance(level, Tensor) for level in preds):
        raise MMRSKDError(
            f'{loss_name}: {arg_name} must be a Tensor or a non-empty list '
            f'of Tensors, got {type(preds).__name__}; check the recorder '
            'mapped in loss_mappings')
    return list(preds)


def pair_levels(loss_name: str,
                preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor,
                same_shape: bool = True) -> Tuple[List[Tensor], List[Tensor]]:
    """Pair student and teacher levels as fp32 tensors.

    Args:
        loss_name (str): class name of the calling loss, for error messages.
        preds_S (Tensor | Sequence[Tensor]): student tensor(s).
        preds_T (Tensor | Sequence[Tensor]): teacher tensor(s), one per
            student level.
        same_shape (bool): require identical shapes per level. Defaults to
            True.

    Returns:
        tuple[list[Tensor], list[Tensor]]: fp32 student tensors and fp32,
        detached teacher tensors (targets never receive gradients).
    """
    if isinstance(preds_S, Tensor) != isinstance(preds_T, Tensor):
        raise MMRSKDError(
            f'{loss_name}: preds_S is a {type(preds_S).__name__} but preds_T '
            f'is a {type(preds_T).__name__}; map both to one tensor or both '
            'to a list of per-level tensors in loss_mappings')
    if isinstance(preds_S, Tensor):
        preds_S, preds_T = [preds_S], [preds_T]
    if not isinstance(preds_S, (list, tuple)) or not isinstance(
            preds_T, (list, tuple)):
        raise MMRSKDError(
            f'{loss_name}: preds_S/preds_T must be Tensors or lists of '
            f'Tensors, got {type(preds_S).__name__}; check the recorder '
            'mapped in loss_mappings')
    if len(preds_S) == 0 or len(preds_S) != len(preds_T):
        raise MMRSKDError(
            f'{loss_name}: got {len(preds_S)} student and {len(preds_T)} '
            'teacher levels; map the same non-empty set of levels for both')
    levels_S, levels_T = [], []
    for level, (pred_S, pred_T) in enumerate(zip(preds_S, preds_T)):
        if same_shape and pred_S.shape != pred_T.shape:
            raise MMRSKDError(
                f'{loss_name}: level {level} student shape {_shape(pred_S)} '
                f'differs from teacher shape {_shape(pred_T)}; add a '
                'connector (e.g. a 1x1 ConvModule) for the student in the '
                "distiller's connectors")
        levels_S.append(pred_S.float())
        levels_T.append(pred_T.detach().float())
    return levels_S, levels_T


def check_level_channels(loss_name: str, levels: Sequence[Tensor],
                         in_channels: Sequence[int], hint: str) -> None:
    """One-line error unless ``levels`` are ``(N, C, H, W)`` maps with the
    built ``in_channels`` (``hint`` says where those channels come from)."""
    channels = [level.shape[1] if level.dim() == 4 else None
                for level in levels]
    if channels != list(in_channels):
        raise MMRSKDError(
            f'{loss_name}: got (N, C, H, W) maps of shapes '
            f'{[tuple(level.shape) for level in levels]}, built for '
            f'in_channels={list(in_channels)}; set in_channels to {hint}')


def per_level(loss_name: str, arg_name: str,
              value: Union[None, Tensor, Sequence[Optional[Tensor]]],
              num_levels: int) -> List[Optional[Tensor]]:
    """Spread an optional per-level tensor argument (``mask``, ``weight``)
    over ``num_levels`` levels.

    ``None`` applies to all levels; a Tensor is only accepted for
    single-level inputs; a list/tuple must have one entry (a Tensor or
    ``None``) per level. Tensors are cast to fp32 and detached: masks and
    weights are constants of the loss.

    Returns:
        list[Tensor | None]: ``num_levels`` entries.
    """
    if value is None:
        return [None] * num_levels
    if isinstance(value, Tensor):
        value = [value]
    if len(value) != num_levels:
        raise MMRSKDError(
            f'{loss_name}: {arg_name} has {len(value)} levels but the '
            f'predictions have {num_levels}; map one {arg_name} per level')
    return [None if v is None else v.detach().float() for v in value]


def match_weight(loss_name: str, weight: Optional[Tensor],
                 loss: Tensor) -> Optional[Tensor]:
    """Check that a per-position weight fits a class-reduced loss.

    Args:
        loss_name (str): class name of the calling loss.
        weight (Tensor, optional): of the loss' shape, broadcastable to it
            with the same number of dims, or with an extra size-1 dim 1
            (an ``(N, 1, H, W)`` mask for an ``(N, H, W)`` loss).
        loss (Tensor): the loss with the class dim reduced.

    Returns:
        Tensor | None: the weight, with the same number of dims as ``loss``.
    """
    if weight is None:
        return None
    if weight.dim() == loss.dim() + 1 and weight.shape[1] == 1:
        weight = weight.squeeze(1)
    try:
        fits = (weight.dim() == loss.dim() and torch.broadcast_shapes(
            weight.shape, loss.shape) == loss.shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise MMRSKDError(
            f'{loss_name}: weight of shape {_shape(weight)} does not fit the '
            f'per-position loss of shape {_shape(loss)} (the predictions '
            'without their class dim 1); pass a weight of that shape')
    return weight


def softmax_kl_div(logits_S: Tensor, logits_T: Tensor, temperature: float,
                   dim: int = 1) -> Tensor:
    """Element-wise ``KL(softmax(T/t) || softmax(S/t)) * t**2``.

    Computed from log-probabilities on both sides, so saturated teachers
    (probabilities of exactly 0) stay finite.

    Args:
        logits_S (Tensor): student logits, any shape.
        logits_T (Tensor): teacher logits, same shape.
        temperature (float): softening temperature ``t``.
        dim (int): the class dim. Defaults to 1.

    Returns:
        Tensor: the KL terms before summing over ``dim``, same shape as the
        inputs.
    """
    log_p_S = F.log_softmax(logits_S / temperature, dim=dim)
    log_p_T = F.log_softmax(logits_T / temperature, dim=dim)
    return F.kl_div(
        log_p_S, log_p_T, reduction='none',
        log_target=True) * temperature**2


def reduce_classes(loss: Tensor, class_reduction: str, dim: int = 1) -> Tensor:
    """Reduce the class dim of an element-wise loss: ``'mean'`` or ``'sum'``
    (validated by the loss' constructor with :func:`check_choice`)."""
    return loss.mean(dim) if class_reduction == 'mean' else loss.sum(dim)


def check_choice(loss_name: str, arg_name: str, value,
                 choices: Sequence) -> None:
    """Raise a one-line error when a constructor option is not allowed."""
    if value not in choices:
        raise MMRSKDError(f'{loss_name}: {arg_name}={value!r} is not '
                          f'supported; use one of {list(choices)}')


def check_positive(loss_name: str, arg_name: str, value: float) -> None:
    """Raise a one-line error when a constructor option is not positive."""
    if not value > 0:
        raise MMRSKDError(f'{loss_name}: {arg_name}={value!r} must be a '
                          'positive number')


def standardise_channels(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """Every channel map of ``feat`` ``(N, C, H, W)`` to zero mean and unit
    variance over ``H, W``, per image (PKD's normalisation)."""
    return F.layer_norm(feat, feat.shape[2:], eps=eps)
