"""A batch cut into contiguous parts whose gradients are computed apart (threads or processes), and the parts'
results put back together into the gradient and loss of the whole batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._structure import rows

if TYPE_CHECKING:
    from .models import Model


def copy_key(model: Model) -> tuple[str, Any] | None:
    """What a copy of ``model`` computing parts of its steps (a thread's replica, a worker process's copy)
    shares with it besides its weights: its config as one text, and its loss object (losses compare by
    identity). A copy serves a later fit only while the model's key is the one it was made with. None for a
    model without a config (an unregistered layer's, in a test): its copies serve no later fit."""
    try:
        signature = json.dumps(model.get_config(), sort_keys=True, default=repr)
    except ValueError:
        return None
    return signature, model.loss


def bounds(samples: int, parts: int) -> list[int]:
    """Where each part starts, then the end: ``parts`` contiguous parts of (nearly) equal size."""
    return [samples * rank // parts for rank in range(parts + 1)]


def part_of(x: Any, y: Any, sample_weight: np.ndarray | None, part: slice) -> tuple[Any, Any, np.ndarray | None]:
    """The rows ``part`` of a batch: of its inputs, its targets and its sample weights (if any)."""
    return rows(x, part), rows(y, part), None if sample_weight is None else sample_weight[part]


def combine(grads: np.ndarray, part_grads: Sequence[np.ndarray], losses: Sequence[float],
            limits: Sequence[int]) -> float:
    """Make ``grads`` (part 0's mean gradient) the gradient of the batch's mean loss, adding each other part's
    weighted by its share of the batch, in rank order; return the batch's mean loss likewise."""
    samples = limits[-1]
    share = limits[1] / samples
    grads *= grads.dtype.type(share)
    loss = losses[0] * share
    for rank, other in enumerate(part_grads, start=1):
        share = (limits[rank + 1] - limits[rank]) / samples
        grads += grads.dtype.type(share) * other
        loss += share * losses[rank]
    return loss


def joined(predictions: list[Any]) -> Any:
    """The parts' predictions as one batch (a list of outputs stays a list)."""
    if isinstance(predictions[0], list | tuple):
        return type(predictions[0])(np.concatenate(outputs) for outputs in zip(*predictions, strict=True))
    return np.concatenate(predictions)
