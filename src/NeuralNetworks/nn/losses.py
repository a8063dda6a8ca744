"""Losses: ``loss(y_true, y_pred)`` is the batch mean; ``loss.gradient(y_true, y_pred)`` is dL/dy_pred.

Argument order follows Keras and scikit-learn: truth first. Cross-entropies clip probabilities to
``[epsilon, 1 - epsilon]`` so that a confident wrong answer costs a large but finite loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import boolean

EPSILON = 1e-7


class Loss:
    """Base loss. ``fusable_with_softmax`` marks cross-entropies whose gradient at the logits is
    ``(y_hat - y) / m``; the model then skips the softmax Jacobian (stable and cheaper)."""

    fusable_with_softmax = False
    sparse_labels = False

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Each sample's loss, shape (batch,): ``__call__`` is their mean (for weighted losses)."""
        raise NotImplementedError

    def logits_gradient(self, y_true: np.ndarray, y_prob: np.ndarray) -> np.ndarray:
        """dL/dz for softmax probabilities ``y_prob = softmax(z)``; only for ``fusable_with_softmax``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """L = mean((y_pred - y_true)^2) over every element;  dL/dy_pred = 2 (y_pred - y_true) / size."""

    def __call__(self, y_true, y_pred):
        diff = y_pred - y_true
        return float(np.mean(diff * diff))

    def per_sample(self, y_true, y_pred):
        diff = (y_pred - y_true).reshape(len(y_pred), -1)
        return np.mean(diff * diff, axis=1)

    def gradient(self, y_true, y_pred):
        return (y_pred - y_true) * (2.0 / y_pred.size)


class MeanAbsoluteError(Loss):
    """L = mean(|y_pred - y_true|);  dL/dy_pred = sign(y_pred - y_true) / size."""

    def __call__(self, y_true, y_pred):
        return float(np.mean(np.abs(y_pred - y_true)))

    def per_sample(self, y_true, y_pred):
        return np.mean(np.abs(y_pred - y_true).reshape(len(y_pred), -1), axis=1)

    def gradient(self, y_true, y_pred):
        return np.sign(y_pred - y_true) * (1.0 / y_pred.size)


class BinaryCrossentropy(Loss):
    """L = -mean(y log p + (1 - y) log(1 - p));  dL/dp = (p - y) / (p (1 - p)) / size."""

    def __call__(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)))

    def per_sample(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return -np.mean((y_true * np.log(p) + (1 - y_true) * np.log1p(-p)).reshape(len(y_pred), -1), axis=1)

    def gradient(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return (p - y_true) / (p * (1 - p)) / y_pred.size


class CategoricalCrossentropy(Loss):
    """L = -(1/m) sum_i sum_k y_ik log p_ik for one-hot ``y_true`` of shape (batch, classes).

    With ``from_logits=True`` ``y_pred`` are logits z, and ``log p = z - logsumexp(z)`` is used directly.
    """

    fusable_with_softmax = True

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = boolean(type(self).__name__, "from_logits", from_logits)

    def _log_probs(self, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:
            shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
            return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return np.log(np.clip(y_pred, EPSILON, 1.0))

    def __call__(self, y_true, y_pred):
        return float(-np.sum(y_true * self._log_probs(y_pred)) / len(y_pred))

    def per_sample(self, y_true, y_pred):
        return -np.sum(y_true * self._log_probs(y_pred), axis=-1)

    def gradient(self, y_true, y_pred):
        if self.from_logits:
            return self.logits_gradient(y_true, np.exp(self._log_probs(y_pred)))
        return -y_true / np.clip(y_pred, EPSILON, 1.0) / len(y_pred)

    def logits_gradient(self, y_true, y_prob):
        # dL/dz = (y_hat * sum_k y_k - y) / m, which is the familiar (y_hat - y) / m for rows summing to 1.
        return (y_prob * y_true.sum(axis=-1, keepdims=True) - y_true) / len(y_prob)

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels ``y_true`` of shape (batch,)."""

    sparse_labels = True

    def _picked(self, y_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(y_true)), np.asarray(y_true, dtype=np.intp).reshape(-1)

    def __call__(self, y_true, y_pred):
        return float(-np.mean(self._log_probs(y_pred)[self._picked(y_true)]))

    def per_sample(self, y_true, y_pred):
        return -self._log_probs(y_pred)[self._picked(y_true)]

    def gradient(self, y_true, y_pred):
        if self.from_logits:
            return self.logits_gradient(y_true, np.exp(self._log_probs(y_pred)))
        grad = np.zeros_like(y_pred)
        rows = self._picked(y_true)
        grad[rows] = -1.0 / np.clip(y_pred[rows], EPSILON, 1.0) / len(y_pred)
        return grad

    def logits_gradient(self, y_true, y_prob):
        grad = y_prob.copy()
        grad[self._picked(y_true)] -= 1
        grad /= len(y_prob)
        return grad


def weighted(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray) -> float:
    """``sum_i w_i l_i / batch``: the batch loss with sample ``i`` counted ``sample_weight[i]`` times (Keras)."""
    return float(np.sum(sample_weight * loss.per_sample(y_true, y_pred)) / len(y_pred))


REGISTRY: dict[str, type[Loss]] = {
    cls.__name__: cls for cls in (MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy,
                                  CategoricalCrossentropy, SparseCategoricalCrossentropy)
}
_ALIASES = {"mse": "MeanSquaredError", "mean_squared_error": "MeanSquaredError", "mae": "MeanAbsoluteError",
            "mean_absolute_error": "MeanAbsoluteError", "binary_crossentropy": "BinaryCrossentropy",
            "categorical_crossentropy": "CategoricalCrossentropy",
            "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy"}


def get(identifier: str | Loss) -> Loss:
    """Resolve a Loss instance, a class name or a Keras alias ("mse", "categorical_crossentropy")."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier.lower(), identifier)
        if name in REGISTRY:
            return REGISTRY[name]()
    known = ", ".join([*REGISTRY, *_ALIASES])
    raise ValueError(f"Unknown loss {identifier!r}. Expected a Loss instance or one of: {known}")
