"""Metrics computed from predictions: accuracy, mean squared/absolute error, confusion matrix, per-class
precision and recall."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .sources import SampleSource

Metric = Callable[[np.ndarray, np.ndarray], float]


def class_indices(y: np.ndarray) -> np.ndarray:
    """Integer classes from one-hot rows, probability rows, a single probability column or integer labels."""
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        return y.argmax(axis=-1)
    if y.ndim >= 2:
        y = y[..., 0]
    if np.issubdtype(y.dtype, np.floating):
        return (y >= 0.5).astype(np.intp) if np.all((y >= 0) & (y <= 1)) else np.rint(y).astype(np.intp)
    return y.astype(np.intp)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals the true class.

    ``y_true`` may be one-hot or integer labels; ``y_pred`` probability rows (argmax) or a single sigmoid
    column (threshold 0.5).
    """
    y_pred = np.asarray(y_pred)
    predicted = class_indices(y_pred)
    truth = class_indices(y_true) if np.asarray(y_true).ndim == y_pred.ndim else np.asarray(y_true).reshape(-1)
    return float(np.mean(predicted.reshape(-1) == truth.reshape(-1).astype(np.intp)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """``matrix[i, j]`` counts samples of true class i predicted as class j."""
    truth, predicted = class_indices(y_true).reshape(-1), class_indices(y_pred).reshape(-1)
    n = num_classes or int(max(truth.max(initial=0), predicted.max(initial=0)) + 1)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def confusion_matrix_by_batches(predict: Callable[[np.ndarray], np.ndarray], source: SampleSource,
                                num_classes: int, batch_size: int = 256) -> np.ndarray:
    """``confusion_matrix`` of ``predict``'s outputs over a ``SampleSource`` (a streamed split), read and
    predicted ``batch_size`` samples at a time, so the outputs of a large set are never all in memory."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(source), batch_size):
        samples, labels = source.gather(np.arange(start, min(start + batch_size, len(source))))
        matrix += confusion_matrix(labels, predict(samples), num_classes=num_classes)
    return matrix


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (column-wise) and recall (row-wise) from a confusion matrix; 0 where undefined."""
    diagonal = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(diagonal, predicted, out=np.zeros_like(diagonal), where=predicted > 0)
    recall = np.divide(diagonal, actual, out=np.zeros_like(diagonal), where=actual > 0)
    return precision, recall


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of the squared differences over every element (the loss of the same name, as a metric)."""
    diff = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.mean(diff * diff))


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of the absolute differences over every element."""
    return float(np.mean(np.abs(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64))))


REGISTRY: dict[str, Metric] = {"accuracy": accuracy, "acc": accuracy,
                               "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
                               "mean_absolute_error": mean_absolute_error, "mae": mean_absolute_error}


def get(identifier: str | Metric) -> tuple[str, Metric]:
    """Resolve a metric name (or a callable ``f(y_true, y_pred)``) to ``(name, function)``; the name is what
    the logs call it: the name as given ("acc" logs "acc", as in Keras), or the function's own name."""
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    if isinstance(identifier, str) and identifier.lower() in REGISTRY:
        return identifier.lower(), REGISTRY[identifier.lower()]
    raise ValueError(f"Unknown metric {identifier!r}. Expected a callable or one of: {', '.join(REGISTRY)}")


class OnOutput:
    """A metric of one output of a model with several: ``metric(y_true[k], y_pred[k])``."""

    def __init__(self, metric: Metric, output: int) -> None:
        self.metric, self.output = metric, output

    def __call__(self, y_true: tuple, y_pred: list) -> float:
        return self.metric(y_true[self.output], y_pred[self.output])
