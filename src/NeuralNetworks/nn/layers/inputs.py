"""``Input``: where a functional model's data enters (Keras' ``keras.Input``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._validation import shape_tuple
from .base import Layer
from .nodes import SymbolicTensor, make_node


class InputLayer(Layer):
    """The layer behind ``Input``: no weights, the identity. A functional model's inputs are its nodes."""

    def __init__(self, shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shape = shape_tuple("Input", "shape", shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        return grad_output

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape)}


def Input(shape: tuple[int, ...], name: str | None = None) -> SymbolicTensor:  # noqa: N802 (Keras' name)
    """A symbolic batch of samples of ``shape`` (batch axis excluded): ``x = layers.Input(shape=(28, 28, 1))``."""
    layer = InputLayer(shape, name=name)
    return make_node(layer, (), layer.shape)
