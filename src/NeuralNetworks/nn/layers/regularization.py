"""Regularisation layers: Dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._validation import optional_seed, real_in_range
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``, so inference is the identity (Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html).
    """

    @classmethod
    def example(cls):
        return cls(0.3), (6,)

    identity_at_inference = True

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = real_in_range("Dropout", "rate", rate, 0.0, 1.0, high_open=True)
        self.seed = optional_seed("Dropout", "seed", seed)
        self._mask: np.ndarray | None = None
        self._rng: np.random.Generator | None = None

    def build(self, input_shape, rng, dtype):
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else rng
        return super().build(input_shape, rng, dtype)

    def own_generator(self) -> np.random.Generator | None:
        """The generator of a layer with a ``seed`` (built), else None (it draws from the model's): a
        data-parallel trainer or a replica gives it a stream of its own, so that parts draw different masks."""
        return self._rng if self.seed is not None else None

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = self._rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._mask

    def backward(self, grad_output, input_gradient=True):
        return grad_output if self._mask is None else grad_output * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
