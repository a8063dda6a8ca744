"""Activation functions, each a forward rule with its backward rule right beneath it.

Every backward rule is written in terms of the activation's *output* ``y = f(x)``, so a layer caches one array
per activation and not two. Names are case-insensitive and ignore underscores: "Relu", "relu", "ReLU" and
"leaky_relu" / "LeakyReLU" all resolve.
"""

from __future__ import annotations

import numpy as np


class Activation:
    """An element-wise (or row-wise, for softmax) function with its derivative."""

    name = "activation"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dx given the output ``y = f(x)`` and ``grad_output = dL/dy``."""
        raise NotImplementedError

    def get_config(self) -> str | dict:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Activation):
    """f(x) = x."""

    name = "linear"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class Sigmoid(Activation):
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


class Tanh(Activation):
    """f(x) = tanh(x);  f'(x) = 1 - y^2."""

    name = "tanh"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (1 - y * y)


class ReLU(Activation):
    """f(x) = max(x, 0);  f'(x) = 1 where y > 0, else 0."""

    name = "relu"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (y > 0)


class LeakyReLU(Activation):
    """f(x) = x if x > 0 else alpha x;  f'(x) = 1 or alpha (the sign of y is the sign of x)."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU expects `alpha` in [0, 1). Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * self.alpha)

    def backward(self, y: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        return np.where(y > 0, grad_output, grad_output * self.alpha)

    def get_config(self) -> str | dict:
        return self.name if self.alpha == 0.01 else {"name": self.name, "alpha": self.alpha}


class Softmax(Activation):
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


_BY_NAME: dict[str, type[Activation]] = {
    cls.name.replace("_", ""): cls for cls in (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}
KNOWN_NAMES = tuple(cls.name for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax))


def get(identifier: str | dict | Activation | None) -> Activation:
    """Resolve a name ("ReLU"), a config dict, an Activation or None (linear) to an Activation."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    options: dict = {}
    if isinstance(identifier, dict):
        options = {k: v for k, v in identifier.items() if k != "name"}
        identifier = identifier.get("name")
    if not isinstance(identifier, str):
        raise TypeError(
            f"An activation must be a name such as 'relu'. Received: activation={identifier!r}"
        )
    cls = _BY_NAME.get(identifier.lower().replace("_", ""))
    if cls is None:
        raise ValueError(
            f"Unknown activation {identifier!r}. Expected one of: {', '.join(KNOWN_NAMES)}"
        )
    return cls(**options)
