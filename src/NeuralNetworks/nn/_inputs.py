"""Validation of what users hand to fit, evaluate, predict, ``model(data=...)`` and ``save(labels=...)``.

Every check raises before any computation, with a message naming the argument, what was expected and what
was received, rather than letting a NumPy broadcasting error surface from deep inside a layer.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import text
from ..budget import DEFAULT_BUDGET
from . import losses as losses_module

MAX_LABEL_CHARS = DEFAULT_BUDGET.max_name_chars

REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats: what a model computes with (never complex)


def _numeric(value: object, name: str) -> np.ndarray:
    """``value`` as an array, or TypeError if it is not an array of real numbers (strings, objects, complex),
    ValueError if it is ragged (lists of different lengths)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` must be a rectangular array of numbers. Received {type(value).__name__} that "
                         f"NumPy cannot turn into one ({str(error).splitlines()[0][:120]})") from None
    if array.dtype.kind not in REAL_KINDS:  # dtype.kind: 3x cheaper than np.issubdtype on the predict path
        kind = "complex numbers, which a model cannot compute with (pass the real and imaginary parts as " \
               "features)" if array.dtype.kind == "c" else f"an array of dtype {array.dtype}"
        raise TypeError(f"`{name}` must be a numeric array. Received {kind}")
    return array


def _require_finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values; clean or impute them before training")


def as_samples(x: object, sample_shape: tuple[int, ...] | None, name: str = "x") -> np.ndarray:
    """Return ``x`` as an array of samples of ``sample_shape``; a missing trailing channel of 1 is added."""
    array = _numeric(x, name)
    if array.ndim == 0:
        raise ValueError(f"`{name}` must be an array of samples. Received a scalar")
    if len(array) == 0:
        raise ValueError(f"`{name}` must hold at least one sample. Received an empty batch of shape {array.shape}")
    if sample_shape is not None and array.shape[1:] != sample_shape:
        if array.shape[1:] + (1,) == sample_shape:
            array = array[..., np.newaxis]
        else:
            expected = ", ".join(map(str, sample_shape))
            raise ValueError(
                f"`{name}` must hold samples of shape {sample_shape} (array shape (n, {expected})). "
                f"Received an array of shape {array.shape}"
            )
    _require_finite(array, name)
    return array


def as_targets(y: object, loss: losses_module.Loss, output_shape: tuple[int, ...], n: int,
               dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Return ``y`` in the form ``loss`` expects for a model with ``output_shape``, or raise saying why."""
    array = _numeric(y, name)
    if array.ndim == 0 or len(array) != n:
        received = "a scalar" if array.ndim == 0 else f"{len(array)} labels"
        raise ValueError(f"`x` and `{name}` must have the same length: x has {n} samples, {name} has {received}")
    _require_finite(array, name)
    units = output_shape[-1]
    if loss.sparse_labels:
        labels = array.reshape(n, -1)
        if labels.shape[1] != 1 or (labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0)):
            raise ValueError(
                f"{type(loss).__name__} expects integer class labels of shape ({n},). "
                f"Received an array of shape {array.shape} (for one-hot labels use CategoricalCrossentropy)"
            )
        labels = labels.reshape(n).astype(np.intp, copy=False)  # int64 labels stay shared, not copied
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= units:
            raise ValueError(
                f"`{name}` holds class labels outside [0, {units - 1}] for a model with {units} outputs. "
                f"Received labels from {labels.min()} to {labels.max()}"
            )
        return labels
    if array.shape[1:] != output_shape:
        if array.ndim == 1 and output_shape == (1,):
            array = array.reshape(n, 1)
        elif isinstance(loss, losses_module.CategoricalCrossentropy) and array.ndim == 1:
            raise ValueError(
                f"CategoricalCrossentropy expects one-hot labels of shape ({n}, {units}). Received integer labels "
                f"of shape {array.shape}: one-hot encode them or use SparseCategoricalCrossentropy"
            )
        else:
            raise ValueError(
                f"`{name}` must have shape ({n}, {', '.join(map(str, output_shape))}) to match the model's output "
                f"shape {output_shape}. Received an array of shape {array.shape}"
            )
    return array.astype(dtype, copy=False)


def as_classification_batch(data: object, sample_shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """``model(data=...)``'s input as a batch, and whether it was one sample (then given without batch axis).
    The trailing channel of 1 may be left out, for one sample or a batch."""
    array = _numeric(data, "data")
    single = array.shape == sample_shape or array.shape + (1,) == sample_shape
    channel_free = sample_shape[:-1] if len(sample_shape) > 1 and sample_shape[-1] == 1 else None
    if not single and (array.ndim == 0 or array.shape[1:] not in (sample_shape, channel_free)):
        raise ValueError(
            f"model(data=...) expects one sample of shape {sample_shape} or a batch of shape "
            f"(n, {', '.join(map(str, sample_shape))}). Received an array of shape {array.shape}"
        )
    return (array[np.newaxis] if single else array), single


def as_labels(labels: Mapping[int, str] | Sequence[str] | None) -> dict[int, str] | None:
    """Class names as ``{index: name}`` from a dict (keys may be strings, as JSON stores them) or a list.

    Indices are non-negative integers, each once; names are distinct printable strings (numbers are written
    as text), so that ``model(data=...)`` gives one score per output."""
    if labels is None:
        return None
    if isinstance(labels, str | bytes) or not isinstance(labels, Mapping | Sequence | np.ndarray):
        raise TypeError(f"`labels` must be a dict {{index: name}} or a list of names. Received: {labels!r:.80}")
    items = labels.items() if isinstance(labels, Mapping) else enumerate(labels)
    result: dict[int, str] = {}
    for index, label in items:
        key = int(index) if isinstance(index, numbers.Integral | str) and str(index).isdigit() else None
        if key is None or key in result:
            raise ValueError(f"`labels` must be keyed by distinct output indices 0, 1, ... Received the key {index!r}")
        if isinstance(label, bool) or not isinstance(label, str | numbers.Number):
            raise TypeError(f"`labels` must hold names (strings). Received {label!r:.80} for output {key}")
        result[key] = text("labels", str(key), str(label), MAX_LABEL_CHARS)
    names = list(result.values())
    if len(set(names)) != len(names):
        repeated = next(name for position, name in enumerate(names) if name in names[:position])
        raise ValueError(f"`labels` must be distinct: {repeated!r} names more than one output")
    return result
