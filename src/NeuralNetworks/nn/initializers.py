"""Weight initializers: ``init(shape, fan_in, fan_out, rng, dtype) -> array``; ``compute_fans(shape)`` gives the fans.

He initialisation keeps the variance of ReLU activations constant across layers (He et al. 2015,
https://arxiv.org/abs/1502.01852); Glorot does the same for symmetric activations such as tanh (Glorot & Bengio
2010, https://proceedings.mlr.press/v9/glorot10a.html). ``default_for(activation)`` picks between them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple[int, ...], int, int, np.random.Generator, np.dtype], np.ndarray]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight, as Keras computes them: ``(in, out)`` for a Dense kernel, ``(kh kw c_in,
    kh kw c_out)`` for a convolution kernel ``(kh, kw, c_in, c_out)``, the size itself for a vector."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2]))
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_uniform(shape, fan_in, fan_out, rng, dtype):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape, fan_in, fan_out, rng, dtype):
    """N(0, 2 / (fan_in + fan_out))."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def he_uniform(shape, fan_in, fan_out, rng, dtype):
    """U(-l, l) with l = sqrt(6 / fan_in)."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, fan_in, fan_out, rng, dtype):
    """N(0, 2 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def lecun_normal(shape, fan_in, fan_out, rng, dtype):
    """N(0, 1 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(dtype)


def zeros(shape, fan_in, fan_out, rng, dtype):
    return np.zeros(shape, dtype=dtype)


def ones(shape, fan_in, fan_out, rng, dtype):
    return np.ones(shape, dtype=dtype)


_BY_NAME: dict[str, Initializer] = {
    f.__name__: f for f in (glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, zeros, ones)
}
_RELU_FAMILY = ("relu", "leaky_relu")


def default_for(activation_name: str) -> str:
    """He for the ReLU family, Glorot otherwise."""
    return "he_normal" if activation_name in _RELU_FAMILY else "glorot_uniform"


def name_or_default(name: str | None, activation_name: str) -> str:
    """A layer's ``initializer`` argument checked: a known name, or None for ``default_for(activation_name)``."""
    if name is None:
        return default_for(activation_name)
    get(name)
    return name


def get(name: str) -> Initializer:
    """Resolve an initializer by name (case-insensitive)."""
    if not isinstance(name, str) or name.lower() not in _BY_NAME:
        raise ValueError(f"Unknown initializer {name!r}. Expected one of: {', '.join(_BY_NAME)}")
    return _BY_NAME[name.lower()]
