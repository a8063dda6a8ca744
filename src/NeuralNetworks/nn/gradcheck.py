"""Finite-difference gradient checks, public so that users can check the layers they write.

``check_layer`` compares a layer's ``backward`` with central differences of the scalar
``f = sum(forward(x) * r)`` for a fixed random ``r`` (so dL/dy = r): for each input and parameter element,
``(f(v + h) - f(v - h)) / 2h``. Run it in float64: float32 rounding swamps the difference quotient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def check_layer(layer: Layer, input_shape: tuple[int, ...] | list[tuple[int, ...]], batch_size: int = 3,
                seed: int = 0, x: np.ndarray | list[np.ndarray] | None = None, training: bool = True,
                step: float = DEFAULT_STEP, tolerance: float = DEFAULT_TOLERANCE) -> GradientCheckResult:
    """Check ``layer.backward`` for the input (each input, for a merge layer: a list of shapes) and every
    parameter; builds the layer in float64 if needed."""
    rng = np.random.default_rng(seed)
    several = layer.several_inputs
    if not layer.built:
        layer.build(list(map(tuple, input_shape)) if several else tuple(input_shape), rng, np.dtype(np.float64))
    if x is None:
        shapes = input_shape if several else [input_shape]
        x = [rng.standard_normal((batch_size, *shape)) for shape in shapes]
        x = x if several else x[0]
    inputs = [np.array(part, dtype=np.float64) for part in (x if several else [x])]
    argument = inputs if several else inputs[0]
    upstream = rng.standard_normal((len(inputs[0]), *layer.output_shape))

    def objective() -> float:
        return float(np.sum(layer.forward(argument, training=training) * upstream))

    layer.forward(argument, training=training)
    analytic_inputs = layer.backward(upstream.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}
    errors = {}
    for index, (value, grad) in enumerate(zip(inputs, analytic_inputs if several else [analytic_inputs],
                                              strict=True)):
        errors["input" if not several else f"input_{index}"] = relative_error(
            grad, numeric_gradient(objective, value, step))
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numeric_gradient(objective, param, step))
    return GradientCheckResult(errors, tolerance)


def check_model(model: Any, x: Any, y: Any, step: float = DEFAULT_STEP,
                tolerance: float = DEFAULT_TOLERANCE) -> GradientCheckResult:
    """Check a whole compiled model's gradients (``compute_gradients``: the graph's backward walk, shared
    layers and fan-out included) against central differences of its loss, for every trainable weight.

    Use a float64 model without randomness in training (no Dropout, no augmentation): each difference
    quotient runs the training-mode forward pass again."""
    x, y = model.prepare_data(x, y)
    model.prepare_training()
    model.compute_gradients(x, y)
    analytic = {name: view.copy() for name, view in model.flat.param_views(model.flat.grads).items()}

    def objective() -> float:
        return float(model.compute_loss(y, model.forward(x, training=True)))

    params = model.flat.param_views(model.flat.params)
    errors = {name: relative_error(analytic[name], numeric_gradient(objective, params[name], step))
              for name in analytic}
    return GradientCheckResult(errors, tolerance)


def check_loss(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray, step: float = DEFAULT_STEP,
               tolerance: float = DEFAULT_TOLERANCE) -> GradientCheckResult:
    """Check ``loss.gradient`` against central differences of ``loss(y_true, y_pred)``."""
    y_pred = np.array(y_pred, dtype=np.float64)
    analytic = loss.gradient(y_true, y_pred)
    numeric = numeric_gradient(lambda: loss(y_true, y_pred), y_pred, step)
    return GradientCheckResult({"y_pred": relative_error(analytic, numeric)}, tolerance)
