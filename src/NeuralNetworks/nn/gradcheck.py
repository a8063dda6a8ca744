"""Finite-difference gradient checks, public so that users can check the layers they write.

``check_layer`` compares a layer's ``backward`` with central differences of the scalar
``f = sum(forward(x) * r)`` for a fixed random ``r`` (so dL/dy = r): for each input and parameter element,
``(f(v + h) - f(v - h)) / 2h``. Run it in float64: float32 rounding swamps the difference quotient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .layers.base import Layer
from .losses import Loss

DEFAULT_STEP = 1e-6
DEFAULT_TOLERANCE = 1e-6


@dataclass
class GradientCheckResult:
    """Relative errors ``|analytic - numeric| / (|analytic| + |numeric|)`` (norms), by array name."""

    errors: dict[str, float]
    tolerance: float

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error < self.tolerance

    def __str__(self) -> str:
        details = ", ".join(f"{name}: {error:.2e}" for name, error in self.errors.items())
        return f"{'passed' if self.passed else 'FAILED'} (tolerance {self.tolerance:.0e}; {details})"


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Norm-wise relative error, 0 when both are zero."""
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denominator == 0 else float(np.linalg.norm(analytic - numeric) / denominator)


def numeric_gradient(f: Callable[[], float], array: np.ndarray, step: float = DEFAULT_STEP) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``array``, perturbed in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + step
        plus = f()
        flat[i] = original - step
        minus = f()
        flat[i] = original
        flat_grad[i] = (plus - minus) / (2 * step)
    return grad


def check_layer(layer: Layer, input_shape: tuple[int, ...], batch_size: int = 3, seed: int = 0,
                x: np.ndarray | None = None, training: bool = True, step: float = DEFAULT_STEP,
                tolerance: float = DEFAULT_TOLERANCE) -> GradientCheckResult:
    """Check ``layer.backward`` for the input and every parameter; builds the layer in float64 if needed."""
    rng = np.random.default_rng(seed)
    if not layer.built:
        layer.build(tuple(input_shape), rng, np.dtype(np.float64))
    if x is None:
        x = rng.standard_normal((batch_size, *input_shape))
    x = np.array(x, dtype=np.float64)
    upstream = rng.standard_normal((len(x), *layer.output_shape))

    def objective() -> float:
        return float(np.sum(layer.forward(x, training=training) * upstream))

    layer.forward(x, training=training)
    analytic_input = layer.backward(upstream.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}
    errors = {"input": relative_error(analytic_input, numeric_gradient(objective, x, step))}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numeric_gradient(objective, param, step))
    return GradientCheckResult(errors, tolerance)


def check_loss(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray, step: float = DEFAULT_STEP,
               tolerance: float = DEFAULT_TOLERANCE) -> GradientCheckResult:
    """Check ``loss.gradient`` against central differences of ``loss(y_true, y_pred)``."""
    y_pred = np.array(y_pred, dtype=np.float64)
    analytic = loss.gradient(y_true, y_pred)
    numeric = numeric_gradient(lambda: loss(y_true, y_pred), y_pred, step)
    return GradientCheckResult({"y_pred": relative_error(analytic, numeric)}, tolerance)
