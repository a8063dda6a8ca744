"""What every exporter sees of a model: its inference-time graph, each layer call a ``Step`` with plain settings,
float32 weights and the names of the tensors it reads and writes. The exporters never look inside a layer: each
layer class converts itself (``export_settings``, ``to_onnx``, ``export_kind``; see ``nn.layers.conversion``).

Layers whose inference forward is the identity (Dropout, data augmentation) vanish here, so neither the ONNX
graph nor the browser's forward pass ever meets them. A ``Sequential`` becomes a chain of steps, each reading the
previous one's output; a functional ``Model`` a graph in topological order.

Tensor names: the model's inputs are ``input`` when it has one, else the names of its ``layers.Input`` (default
``input_1``, ``input_2``, ...); its outputs are ``output`` when it has one, else the names of the layers that
compute them (as ``model.output_names``). A step's output is named after its layer (``dense_1``; a shared
layer's later calls ``dense_1_2`` ...). Names are made unique by a ``_2``, ``_3`` ... suffix where they clash,
the public input and output names first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..nn import layers, models
from ..nn.layers.conversion import (
    ACTIVATION_NAMES,
    EXPORT_DTYPE,
    ExportError,
    Settings,
    Weights,
    activation_settings,
    describe,
)

INPUT_NAME, OUTPUT_NAME = "input", "output"  # a model's only input and only output: public ONNX names


@dataclass(frozen=True)
class Step:
    """One inference-time layer call: ``kind`` is what it computes ("Conv2D"), shapes exclude the batch axis
    (``input_shape`` is a tuple of shapes for a merge), ``inputs`` and ``output`` name its tensors, and
    ``to_onnx`` is its kind's ONNX conversion (None if it has none)."""

    kind: str
    name: str
    input_shape: tuple
    output_shape: tuple[int, ...]
    settings: Settings = field(default_factory=dict)
    weights: Weights = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    output: str = ""
    to_onnx: Callable[[Any, Step], None] | None = field(default=None, compare=False, repr=False)
    layer_class: str = ""  # the class of the layer it came from, for messages


@dataclass(frozen=True)
class Port:
    """A model input or output: its public ``name``, the plan ``tensor`` it is, and its sample shape."""

    name: str
    tensor: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """A model ready to export: its steps in topological order, inputs and outputs, labels in (first) output
    order and input style."""

    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    steps: list[Step]
    labels: list[str]
    preprocessing: str | dict | None  # a drawing style, or an image or table spec (data.preprocessing)

    @property
    def input_shape(self) -> tuple[int, ...] | list[tuple[int, ...]]:
        """The input's shape, or the list of them for several inputs (as ``model.input_shape``)."""
        shapes = [port.shape for port in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> tuple[int, ...] | list[tuple[int, ...]]:
        shapes = [port.shape for port in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def is_chain(self) -> bool:
        """One input, one output, and each step reads the previous one's output (a Sequential's shape)."""
        previous = self.inputs[0].tensor
        for item in self.steps:
            if item.inputs != (previous,):
                return False
            previous = item.output
        return len(self.inputs) == len(self.outputs) == 1 and self.outputs[0].tensor == previous


# -- layers ----------------------------------------------------------------------------------------------------
CONVERSION = ("export_settings", "to_onnx", "export_kind")  # what a layer class defines to convert itself


def conversion_class(layer: layers.Layer) -> type[layers.Layer]:
    """The class whose conversion exports ``layer`` (the nearest in its MRO defining a ``CONVERSION`` member),
    or ExportError naming the layer and its class."""
    cls = type(layer)
    owner = next((base for base in cls.__mro__ if any(member in vars(base) for member in CONVERSION)), None)
    if owner is None or not hasattr(cls, "export_settings"):
        raise ExportError(f"Cannot export layer {describe(layer)}: {cls.__name__} has no export conversion (an "
                          "export_settings method, see NeuralNetworks.nn.layers.conversion) and is not the "
                          f"identity at inference. Layers that export: {', '.join(convertible())}")
    computes = next(base for base in cls.__mro__ if "forward" in vars(base))
    if not issubclass(owner, computes):
        raise ExportError(f"Cannot export layer {describe(layer)}: {cls.__name__} overrides the forward of "
                          f"{owner.__name__}, whose export conversion may not compute the same; give "
                          f"{cls.__name__} its own export_settings")
    return owner


def convertible() -> list[str]:
    """The registered layer classes that export: with a conversion, or the identity at inference."""
    return [name for name, cls in layers.REGISTRY.items()
            if hasattr(cls, "export_settings") or cls.identity_at_inference]


def onnx_conversion(kind: str, owner: type[layers.Layer]) -> Callable[[Any, Step], None] | None:
    """The ``to_onnx`` of a step of ``kind`` made by ``owner``'s conversion: its own, or, when the layer exports
    as another kind, that registered class's."""
    source = owner if kind == owner.__name__ else layers.REGISTRY.get(kind)
    return getattr(source, "to_onnx", None)


def step(layer: layers.Layer, inputs: tuple[str, ...] = (), output: str = "") -> Step:
    """The exported form of one call of a built layer, or ExportError naming it."""
    owner = conversion_class(layer)
    settings, weights = layer.export_settings()
    kind = str(getattr(layer, "export_kind", None) or owner.__name__)
    input_shape = tuple(tuple(shape) for shape in layer.input_shape) if layer.several_inputs \
        else tuple(layer.input_shape)
    return Step(kind, str(layer.name), input_shape, tuple(layer.output_shape), settings,
                {key: value.astype(EXPORT_DTYPE, copy=False) for key, value in weights.items()},
                inputs, output or str(layer.name), onnx_conversion(kind, owner), type(layer).__name__)


# -- models ----------------------------------------------------------------------------------------------------
def as_model(model: models.Model | str | os.PathLike) -> models.Model:
    """A model, or the model saved at a path."""
    if isinstance(model, str | os.PathLike):
        return models.load(Path(model))
    if not isinstance(model, models.Model):
        raise TypeError(f"Expected a model (Sequential or Model) or a model file path. Received: "
                        f"{type(model).__name__}")
    return model


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate)
    return candidate


def _public_names(names: Iterable[str], only: str, taken: set[str]) -> list[str]:
    names = list(names)
    return [_unique(only, taken)] if len(names) == 1 else [_unique(str(name), taken) for name in names]


def plan(model: models.Model | str | os.PathLike) -> Plan:
    """The inference steps of ``model`` (or of the model file at that path); ExportError if a layer cannot go."""
    model = as_model(model)
    if not model.built:
        raise ExportError(f"Cannot export model {model.name!r}: it is not built (fit it or give the first layer "
                          "an input_shape)")
    graph = model.graph
    taken: set[str] = set()
    input_names = _public_names(graph.input_names, INPUT_NAME, taken)
    output_names = _public_names(model.output_names, OUTPUT_NAME, taken)  # before the steps': they are public
    tensors = dict(enumerate(input_names))  # slot -> plan tensor name
    steps = []
    for call in graph.calls:
        if call.layer.identity_at_inference:
            tensors[call.output] = tensors[call.inputs[0]]
            continue
        output = _unique(str(call.layer.name), taken)
        steps.append(step(call.layer, tuple(tensors[slot] for slot in call.inputs), output))
        tensors[call.output] = output
    inputs = tuple(Port(name, name, shape) for name, shape in zip(input_names, graph.input_shapes, strict=True))
    outputs = tuple(Port(name, tensors[slot], shape) for name, slot, shape
                    in zip(output_names, graph.outputs, graph.output_shapes(), strict=True))
    labels = [str((model.labels or {}).get(index, index)) for index in range(math.prod(outputs[0].shape))]
    return Plan(model.name, inputs, outputs, steps, labels, model.preprocessing)


__all__ = ["ACTIVATION_NAMES", "EXPORT_DTYPE", "ExportError", "Plan", "Port", "Settings", "Step",
           "activation_settings", "as_model", "conversion_class", "plan", "step"]
