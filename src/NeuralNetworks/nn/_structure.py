"""Batches of a model with several inputs or outputs: a tuple of arrays, one per input (or output), whose rows
are the samples. A model of one input and one output sees plain arrays, as always; these helpers treat both."""

from __future__ import annotations

import numpy as np

Arrays = np.ndarray | tuple[np.ndarray, ...]


def rows(batch: Arrays | list, index: np.ndarray | slice) -> Arrays:
    """The samples at ``index`` of an array, or of each array of a tuple (or of a model's list of outputs)."""
    return tuple(part[index] for part in batch) if isinstance(batch, tuple | list) else batch[index]


def count(batch: Arrays | list) -> int:
    return len(batch[0]) if isinstance(batch, tuple | list) else len(batch)


def astype(batch: Arrays, dtype: np.dtype) -> Arrays:
    if isinstance(batch, tuple):
        return tuple(np.asarray(part, dtype=dtype) for part in batch)
    return np.asarray(batch, dtype=dtype)


def parts(batch: Arrays | list) -> list[np.ndarray]:
    """The arrays of a batch, as a list (one for a plain array)."""
    return list(batch) if isinstance(batch, tuple | list) else [batch]
