"""The layer protocol every layer follows: build, forward, backward, get_config."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations as activations_module
from .._validation import shape_tuple


class Layer:
    """Base layer. Subclasses override ``build`` (if they own weights), ``forward`` and ``backward``.

    Attributes:
        params: trainable arrays, e.g. ``{"kernel": W, "bias": b}``; empty for Flatten.
        grads: same keys and shapes as ``params``, overwritten by every ``backward``.
        state: non-trainable arrays saved with the model (BatchNormalization's moving statistics).
    """

    def __init__(self, *, name: str | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        self.name = name
        self.input_shape = None if input_shape is None else shape_tuple(type(self).__name__, "input_shape",
                                                                        input_shape)
        self.output_shape: tuple[int, ...] | None = None
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.built = False

    # -- the protocol -------------------------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> tuple[int, ...]:
        """Create parameters for this sample shape (batch axis excluded); return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output sample shape for an input sample shape; raise ValueError if the input does not fit."""
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output; cache what ``backward`` needs only when ``training``."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Write ``self.grads`` and return dL/dx. Never mutates ``grad_output``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, so that ``cls(**config)`` rebuilds the layer."""
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    # -- helpers ------------------------------------------------------------------------------------------
    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, output_shape={self.output_shape})"


class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z)`` for a pre-activation ``z`` it computes (Dense, Conv2D).

    ``backward_preactivation(dL/dz)`` lets the model skip the softmax Jacobian when softmax is fused with
    cross-entropy, whose gradient at the logits is simply ``(y_hat - y) / m``.
    """

    def __init__(self, activation: str | dict | activations_module.Activation | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)
        self._output: np.ndarray | None = None

    def activate(self, z: np.ndarray, training: bool) -> np.ndarray:
        y = self.activation(z)
        self._output = y if training else None
        return y

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._output is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        return self.backward_preactivation(self.activation.backward(self._output, grad_output), input_gradient)

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Write grads and return dL/dx from dL/dz, the gradient at the pre-activation.

        With ``input_gradient=False`` (the model's first layer with weights) dL/dx is skipped: nothing uses it.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation.get_config()}
