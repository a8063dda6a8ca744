"""``fit(..., class_weight=..., sample_weight=...)``: how much each training sample counts, as in Keras.

A batch's loss becomes ``sum_i w_i l_i / m`` (Keras' "sum over batch size" reduction), and its gradient at the
output is the unweighted one with row ``i`` scaled by ``w_i``: every loss here is a sum of per-sample terms, so
scaling the rows is exact. ``w_i`` is ``class_weight[label_i] * sample_weight[i]`` (each 1 when not given).
``class_weight="balanced"`` is scikit-learn's ``n_samples / (n_classes * count(label))``: every class then
weighs as much in the loss, whatever its size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

BALANCED = "balanced"


def balanced_class_weight(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """``n_samples / (n_classes * count(class))`` for each class present in ``labels`` (int class indices)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).reshape(-1), minlength=num_classes)
    return {label: len(labels) / (num_classes * int(count)) for label, count in enumerate(counts) if count}


def _class_indices(y: np.ndarray) -> np.ndarray:
    """Class indices of prepared labels: integer labels as they are, one-hot rows by their largest entry."""
    return y.astype(np.int64).reshape(-1) if y.ndim == 1 or y.shape[1:] == (1,) else y.argmax(axis=-1)


@dataclass(frozen=True)
class Weighting:
    """Per-class weights (indexed by label) and per-sample weights (indexed by row of fit's ``x``), either None."""

    per_class: np.ndarray | None
    per_sample: np.ndarray | None

    @classmethod
    def of(cls, class_weight: object, sample_weight: object, n: int, num_outputs: int, sparse: bool,
           y: np.ndarray | None) -> Weighting | None:
        """Check fit's ``class_weight`` ({label: weight} or "balanced") and ``sample_weight`` (n weights)."""
        if class_weight is None and sample_weight is None:
            return None
        per_class = per_sample = None
        if class_weight is not None:
            if not sparse and num_outputs < 2:
                raise ValueError("class_weight needs a classifier (class labels); this model has one output")
            if isinstance(class_weight, str) and class_weight == BALANCED:
                if y is None:
                    raise ValueError("class_weight='balanced' counts the labels of arrays; give a dict of class "
                                     "weights when training from a SampleSource")
                class_weight = balanced_class_weight(_class_indices(y), num_outputs)
            if not isinstance(class_weight, Mapping) or not class_weight:
                raise TypeError(f"class_weight must be a dict {{class index: weight}} or 'balanced'. "
                                f"Received: {class_weight!r:.80}")
            per_class = np.ones(num_outputs)
            for label, weight in class_weight.items():
                if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label < num_outputs:
                    raise ValueError(f"class_weight keys must be class indices 0 to {num_outputs - 1}. "
                                     f"Received: {label!r:.40}")
                if isinstance(weight, bool) or not isinstance(weight, int | float | np.number) or not (
                        math.isfinite(weight) and weight >= 0):
                    raise ValueError(f"class_weight[{label}] must be a finite number >= 0. Received: {weight!r:.40}")
                per_class[int(label)] = float(weight)
        if sample_weight is not None:
            try:
                per_sample = np.asarray(sample_weight, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError("sample_weight must be an array of numbers, one per sample") from None
            if per_sample.shape != (n,):
                raise ValueError(f"sample_weight must hold one weight per sample, shape ({n},). "
                                 f"Received shape {per_sample.shape}")
            if not np.isfinite(per_sample).all() or per_sample.min(initial=0) < 0:
                raise ValueError("sample_weight must be finite numbers >= 0")
        return cls(per_class, per_sample)

    def weights(self, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The weights of a batch: labels ``y`` (prepared) and its ``rows`` in fit's ``x``."""
        weights = np.ones(len(y))
        if self.per_class is not None:
            weights *= self.per_class[_class_indices(y)]
        if self.per_sample is not None:
            weights *= self.per_sample[rows]
        return weights
