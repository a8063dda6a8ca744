"""What every exporter sees of a model: its inference-time layers, each as a ``Step`` with plain settings and
float32 weights. The one place that decides which layers and activations can leave Python, and how.

Layers whose inference forward is the identity (Dropout, data augmentation) vanish here, so neither the ONNX
graph nor the browser's forward pass ever meets them. Spatial settings are resolved to numbers: "same" padding
becomes the explicit (top, left, bottom, right) split our layers use, computed by the layers' own geometry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..nn import activations, layers, models
from ..nn.layers.windows import padding_amounts

EXPORT_DTYPE = np.dtype("float32")  # every exported weight and computation: what ONNX runtimes and browsers run

Settings = dict[str, Any]


class ExportError(ValueError):
    """The model cannot be exported: the message names the layer (or activation) and what is supported."""


@dataclass(frozen=True)
class Step:
    """One inference-time layer: ``kind`` is its class name ("Conv2D"), shapes exclude the batch axis."""

    kind: str
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    settings: Settings = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A model ready to export: its steps, input and output shapes, labels in output order and input style."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    steps: list[Step]
    labels: list[str]
    preprocessing: str | dict | None  # a drawing style, or an image or table spec (data.preprocessing)


# -- activations ---------------------------------------------------------------------------------------------
ACTIVATION_NAMES: dict[type[activations.ActivationFunction], str] = {
    activations.Linear: "linear", activations.ReLU: "relu", activations.LeakyReLU: "leaky_relu",
    activations.Sigmoid: "sigmoid", activations.Tanh: "tanh", activations.Softmax: "softmax",
}


def activation_settings(layer: layers.Layer) -> Settings:
    """``{"name": "leaky_relu", "alpha": 0.01}``-style settings of a layer's activation, or ExportError."""
    activation = layer.activation
    name = ACTIVATION_NAMES.get(type(activation))
    if name is None:
        raise ExportError(f"Cannot export layer {layer.name!r} ({type(layer).__name__}): its activation "
                          f"{type(activation).__name__} ({getattr(activation, 'name', '?')!r}) is not one of "
                          f"the exportable activations ({', '.join(ACTIVATION_NAMES.values())})")
    settings: Settings = {"name": name}
    if name == "leaky_relu":
        settings["alpha"] = float(activation.alpha)
    return settings


# -- layers ----------------------------------------------------------------------------------------------------
def _weights(layer: layers.Layer, *names: str) -> dict[str, np.ndarray]:
    arrays = {**layer.params, **layer.state}
    return {name: np.ascontiguousarray(arrays[name], dtype=EXPORT_DTYPE) for name in names if name in arrays}


def _window_settings(layer: layers.Layer, window: tuple[int, int]) -> Settings:
    """Window size, strides and the explicit (top, left, bottom, right) padding of a Conv2D or pooling layer."""
    height, width = layer.input_shape[:2]
    top, bottom = padding_amounts(height, window[0], layer.strides[0], layer.padding)
    left, right = padding_amounts(width, window[1], layer.strides[1], layer.padding)
    return {"window": list(window), "strides": list(layer.strides), "pads": [top, left, bottom, right]}


def _dense(layer: layers.Dense) -> tuple[Settings, dict[str, np.ndarray]]:
    return {"activation": activation_settings(layer)}, _weights(layer, "kernel", "bias")


def _conv2d(layer: layers.Conv2D) -> tuple[Settings, dict[str, np.ndarray]]:
    settings = {**_window_settings(layer, layer.kernel_size), "activation": activation_settings(layer)}
    return settings, _weights(layer, "kernel", "bias")


def _pooling(layer: layers.Layer) -> tuple[Settings, dict[str, np.ndarray]]:
    return _window_settings(layer, layer.pool_size), {}


def _batch_normalization(layer: layers.BatchNormalization) -> tuple[Settings, dict[str, np.ndarray]]:
    """Inference-mode statistics; a layer without ``scale``/``center`` gets gamma = 1 / beta = 0."""
    weights = _weights(layer, "gamma", "beta", "moving_mean", "moving_variance")
    channels = layer.input_shape[-1]
    weights.setdefault("gamma", np.ones(channels, EXPORT_DTYPE))
    weights.setdefault("beta", np.zeros(channels, EXPORT_DTYPE))
    return {"epsilon": float(layer.epsilon)}, weights


def _rescaling(layer: layers.Rescaling) -> tuple[Settings, dict[str, np.ndarray]]:
    return {"scale": float(layer.scale), "offset": float(layer.offset)}, {}


def _activation(layer: layers.Activation) -> tuple[Settings, dict[str, np.ndarray]]:
    return {"activation": activation_settings(layer)}, {}


def _no_settings(layer: layers.Layer) -> tuple[Settings, dict[str, np.ndarray]]:
    return {}, {}


# Exact classes: a subclass may compute something else, so it is refused rather than exported wrongly.
CONVERTERS: dict[type[layers.Layer], Callable[[Any], tuple[Settings, dict[str, np.ndarray]]]] = {
    layers.Dense: _dense, layers.Conv2D: _conv2d, layers.MaxPooling2D: _pooling,
    layers.AveragePooling2D: _pooling, layers.GlobalAveragePooling2D: _no_settings,
    layers.BatchNormalization: _batch_normalization, layers.Rescaling: _rescaling,
    layers.Activation: _activation, layers.Flatten: _no_settings, layers.Reshape: _no_settings,
}


def step(layer: layers.Layer) -> Step:
    """The exported form of one built layer, or ExportError naming it."""
    converter = CONVERTERS.get(type(layer))
    if converter is None:
        known = ", ".join(cls.__name__ for cls in CONVERTERS)
        raise ExportError(f"Cannot export layer {layer.name!r} ({type(layer).__name__}): exportable layers are "
                          f"{known}, and layers that are the identity at inference (Dropout)")
    settings, weights = converter(layer)
    return Step(type(layer).__name__, str(layer.name), tuple(layer.input_shape), tuple(layer.output_shape),
                settings, weights)


def as_model(model: models.Sequential | str | os.PathLike) -> models.Sequential:
    """A Sequential, or the model saved at a path."""
    if isinstance(model, str | os.PathLike):
        return models.load(Path(model))
    if not isinstance(model, models.Sequential):
        raise TypeError(f"Expected a Sequential model or a model file path. Received: {type(model).__name__}")
    return model


def plan(model: models.Sequential | str | os.PathLike) -> Plan:
    """The inference steps of ``model`` (or of the model file at that path); ExportError if a layer cannot go."""
    model = as_model(model)
    if not model.built:
        raise ExportError(f"Cannot export model {model.name!r}: it is not built (fit it or give the first layer "
                          "an input_shape)")
    steps = [step(layer) for layer in model.layers if not layer.identity_at_inference]
    outputs = int(np.prod(model.output_shape))
    labels = [str((model.labels or {}).get(index, index)) for index in range(outputs)]
    return Plan(model.name, tuple(model.input_shape), tuple(model.output_shape), steps, labels,
                model.preprocessing)
