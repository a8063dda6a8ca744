"""What a layer tells the exporters (``NeuralNetworks.export``): the helpers its conversion methods use, and
``ExportError``. Nothing here imports the exporters or onnx: they call the layer, not the other way round.

A layer class converts with two methods, beside its ``forward``:

``export_settings(self) -> (settings, weights)``
    Plain JSON settings and float32 weights: what computing the layer at inference needs, in the form the
    exported step of its ``export_kind`` reads (the web page's function of that name in ``nn.js``; ONNX below).
``to_onnx(builder, step)`` (a staticmethod)
    Appends the ONNX nodes of one exported ``step`` through ``builder`` (``export.onnx.GraphBuilder``), reading
    only the step: its ``settings`` and ``weights``.

``export_kind`` (a class attribute, default the name of the class that defines the conversion) is the kind of
step the layer becomes. A layer of one's own that computes what a built-in one computes may export as it:
``export_kind = "BatchNormalization"`` with that layer's settings and weights; it then needs no ``to_onnx`` and
runs on the web page too. A subclass that overrides ``forward`` below the class that defines its conversion is
refused (it may compute something else); layers with ``identity_at_inference`` vanish from exports and need no
conversion. A layer without a conversion is refused by every exporter, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import activations
from .windows import padding_amounts

if TYPE_CHECKING:
    from .base import Layer

EXPORT_DTYPE = np.dtype("float32")  # every exported weight and computation: what ONNX runtimes and browsers run

Settings = dict[str, Any]
Weights = dict[str, np.ndarray]


class ExportError(ValueError):
    """The model cannot be exported: the message names the layer (or activation) and what is supported."""


ACTIVATION_NAMES: dict[type[activations.ActivationFunction], str] = {
    activations.Linear: "linear", activations.ReLU: "relu", activations.LeakyReLU: "leaky_relu",
    activations.Sigmoid: "sigmoid", activations.Tanh: "tanh", activations.Softmax: "softmax",
}


def describe(layer: Layer) -> str:
    """``'dense_1' (Dense)``: how export messages name a layer."""
    return f"{layer.name!r} ({type(layer).__name__})"


def activation_settings(layer: Layer) -> Settings:
    """``{"name": "leaky_relu", "alpha": 0.01}``-style settings of a layer's activation, or ExportError."""
    activation = layer.activation
    name = ACTIVATION_NAMES.get(type(activation))
    if name is None:
        raise ExportError(f"Cannot export layer {describe(layer)}: its activation {type(activation).__name__} "
                          f"({getattr(activation, 'name', '?')!r}) is not one of the exportable activations "
                          f"({', '.join(ACTIVATION_NAMES.values())})")
    settings: Settings = {"name": name}
    if name == "leaky_relu":
        settings["alpha"] = float(activation.alpha)
    return settings


def float32_weights(layer: Layer, *names: str) -> Weights:
    """The layer's trainable or state arrays called ``names`` (those it has), as contiguous float32."""
    arrays = {**layer.params, **layer.state}
    return {name: np.ascontiguousarray(arrays[name], dtype=EXPORT_DTYPE) for name in names if name in arrays}


def window_settings(layer: Layer, window: tuple[int, int]) -> Settings:
    """Window size, strides and the explicit (top, left, bottom, right) padding of a Conv2D or pooling layer:
    "same" padding resolved by the layers' own geometry, so that no exporter computes it again."""
    height, width = layer.input_shape[:2]
    top, bottom = padding_amounts(height, window[0], layer.strides[0], layer.padding)
    left, right = padding_amounts(width, window[1], layer.strides[1], layer.padding)
    return {"window": list(window), "strides": list(layer.strides), "pads": [top, left, bottom, right]}
