"""Activation functions, each a forward rule with its backward rule right beneath it.

Every built-in backward rule is written in terms of the activation's *output* ``y = f(x)``, so a layer caches
one array per activation and not two. Names are case-insensitive and ignore underscores: "Relu", "relu", "ReLU"
and "leaky_relu" / "LeakyReLU" all resolve. A pair of plain functions ``(f, f_prime)``, the derivative taken
with respect to the input as in most tutorials, makes an ``Elementwise`` activation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import real_in_range


class NotSerializableError(TypeError):
    """A part of a model that a model file cannot hold (it stores configurations and arrays, never code)."""


class ActivationFunction:
    """An element-wise (or row-wise, for softmax) function with its derivative.

    ``backward(saved, grad_output)`` returns dL/dx; ``saved`` is the output ``y = f(x)``, or the input ``x``
    for a function whose ``needs_input`` is True (its derivative is known only in terms of ``x``).
    """

    name = "activation"
    needs_input = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dx given the output ``y = f(x)`` and ``grad_output = dL/dy``."""
        raise NotImplementedError

    def get_config(self) -> str | dict:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(ActivationFunction):
    """f(x) = x."""

    name = "linear"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class Sigmoid(ActivationFunction):
    """f(x) = 1 / (1 + e^-x);  f'(x) = y (1 - y)."""

    name = "sigmoid"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # The tanh identity sigmoid(x) = (1 + tanh(x/2)) / 2 never overflows, unlike 1 / (1 + exp(-x)).
        y = np.tanh(x * 0.5)
        y += 1
        y *= 0.5
        return y

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * y * (1 - y)


class Tanh(ActivationFunction):
    """f(x) = tanh(x);  f'(x) = 1 - y^2."""

    name = "tanh"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (1 - y * y)


class ReLU(ActivationFunction):
    """f(x) = max(x, 0);  f'(x) = 1 where y > 0, else 0."""

    name = "relu"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Against an array of zeros, not the scalar 0: NumPy's vector loop takes two arrays, 2x faster here.
        zeros = np.zeros(x.shape, x.dtype)
        return np.maximum(x, zeros, out=zeros)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (y > 0)


class LeakyReLU(ActivationFunction):
    """f(x) = x if x > 0 else alpha x;  f'(x) = 1 or alpha (the sign of y is the sign of x)."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = real_in_range("LeakyReLU", "alpha", alpha, 0.0, 1.0, high_open=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * self.alpha)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return np.where(y > 0, grad_output, grad_output * self.alpha)

    def get_config(self) -> str | dict:
        return self.name if self.alpha == 0.01 else {"name": self.name, "alpha": self.alpha}


class Softmax(ActivationFunction):
    """f(x)_i = e^{x_i} / sum_j e^{x_j} over the last axis;  dL/dx = y * (g - sum(g * y)).

    The maximum is subtracted first so that any finite logits (even of magnitude 1e4) give finite output.
    """

    name = "softmax"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        e = x - x.max(axis=-1, keepdims=True)
        np.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        weighted = grad_output * y
        return weighted - y * weighted.sum(axis=-1, keepdims=True)


class Elementwise(ActivationFunction):
    """A custom activation from two plain functions of the input: ``y = function(x)``, ``dy/dx =
    derivative(x)``, e.g. ``Elementwise(np.tanh, lambda x: 1 - np.tanh(x) ** 2)``.

    The layer keeps the input ``x`` for backward. A model file cannot hold Python functions, so a model using
    one trains and predicts but cannot be saved (``NotSerializableError`` says what to do instead).
    """

    needs_input = True

    def __init__(self, function: Callable[[np.ndarray], np.ndarray],
                 derivative: Callable[[np.ndarray], np.ndarray], name: str | None = None) -> None:
        for role, value in (("function", function), ("derivative", derivative)):
            if not callable(value):
                raise TypeError(f"Elementwise expects `{role}` to be a function of an array. Received: {value!r}")
        self.function, self.derivative = function, derivative
        self.name = name or getattr(function, "__name__", "custom")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.function(x), dtype=x.dtype)

    def backward(self, x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * np.asarray(self.derivative(x), dtype=x.dtype)

    def get_config(self) -> str | dict:
        raise NotSerializableError(
            f"the activation {self.name!r} is a pair of Python functions, and a model file holds no code. "
            f"Use a built-in activation ({', '.join(KNOWN_NAMES)}), or keep the weights (model.get_weights()) "
            "and rebuild the model in code before model.set_weights(...)"
        )

    def __repr__(self) -> str:
        return f"Elementwise({self.name})"


_BY_NAME: dict[str, type[ActivationFunction]] = {
    cls.name.replace("_", ""): cls for cls in (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}
KNOWN_NAMES = tuple(cls.name for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax))

Identifier = str | dict | ActivationFunction | tuple | None


def get(identifier: Identifier) -> ActivationFunction:
    """Resolve a name ("ReLU"), a config dict, an ActivationFunction, a ``(function, derivative)`` pair of
    plain functions, or None (linear) to an ActivationFunction."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, ActivationFunction):
        return identifier
    if isinstance(identifier, tuple) and len(identifier) == 2:
        return Elementwise(*identifier)
    if callable(identifier):
        raise TypeError(f"The activation {getattr(identifier, '__name__', identifier)!r} comes without its "
                        "derivative: pass the pair (function, derivative), e.g. (tanh, tanh_prime)")
    options: dict = {}
    if isinstance(identifier, dict):
        options = {k: v for k, v in identifier.items() if k != "name"}
        identifier = identifier.get("name")
    if not isinstance(identifier, str):
        raise TypeError(
            f"An activation must be a name such as 'relu' or a (function, derivative) pair. "
            f"Received: activation={identifier!r}"
        )
    cls = _BY_NAME.get(identifier.lower().replace("_", ""))
    if cls is None:
        raise ValueError(
            f"Unknown activation {identifier!r}. Expected one of: {', '.join(KNOWN_NAMES)}"
        )
    return cls(**options)
