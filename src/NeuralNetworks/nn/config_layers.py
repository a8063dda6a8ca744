"""The layers of a model file's config, walked without building the model: each layer made from its entry
through its own constructor (which allocates nothing), its shape rules followed from the input shapes, and
the arrays it would create counted against the budget before anything is allocated.

A ``Sequential`` config lists its layers in order from ``input_shape``; a functional ``Model`` config lists its
``inputs``, each layer once, and its ``calls`` (a layer and the tensor slots it reads: the inputs first, then
one slot per call, so a call can only read what came before it) and the ``outputs`` slots.

A layer of one's own (``@layers.register``) that does not declare ``weight_shapes`` is built once here to learn
its weights' shapes, with its weight budget set to what the model may still allocate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config_checks import Shape, constructor_keys, entries, integer, shape, type_name
from .._validation import shown, text
from ..budget import Budget
from .layers import REGISTRY as LAYER_REGISTRY
from .layers import Layer, declares_weight_shapes, unknown_class_message

SEQUENTIAL_KEYS = ("name", "dtype", "input_shape", "layers")
GRAPH_KEYS = ("name", "dtype", "inputs", "layers", "calls", "outputs")
GRAPH_OPTIONAL_KEYS = ("seed", "several_inputs", "several_outputs")


@dataclass
class Arrays:
    """What the layers would create, "layer/param" -> shape: trainable weights, the weights of frozen layers,
    and non-trainable state (moving statistics)."""

    trainable: dict[str, Shape] = field(default_factory=dict)
    frozen: dict[str, Shape] = field(default_factory=dict)
    state: dict[str, Shape] = field(default_factory=dict)


class Walk:
    """Follows the shapes through the layers, holding every count to ``budget``."""

    def __init__(self, budget: Budget, dtype: str) -> None:
        self.budget, self.dtype = budget, dtype
        self.arrays = Arrays()
        self.names: set[str] = set()
        self.parameter_count = self.operations = 0

    def layer(self, entry: object, where: str) -> tuple[Layer, str]:
        """The layer an entry describes (through its constructor) and where it is, for messages."""
        entry = entries(entry, where, ("class_name", "config"))
        layer_class = LAYER_REGISTRY.get(entry["class_name"]) if isinstance(entry["class_name"], str) else None
        if layer_class is None:
            raise ValueError(f"{where}: {unknown_class_message(entry['class_name'])}")
        config = entries(entry["config"], f"{where}.config", ("name",), constructor_keys(layer_class))
        name = text(f"{where}.config", "name", config["name"], self.budget.max_name_chars)
        if name in self.names:
            raise ValueError(f"{where}: the layer name {name!r} is used twice; layer names must be unique")
        self.names.add(name)
        where = f"{where} ({name})"
        try:
            return layer_class.from_config(dict(config)), where
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from None

    def call(self, layer: Layer, where: str, received: Any, first: bool) -> Shape:
        """The output shape of ``layer`` on inputs of shape ``received``; on its first call, its arrays too."""
        try:
            if first and layer.input_shape is not None and not layer.several_inputs \
                    and layer.input_shape != received:
                raise ValueError(f"declares input_shape {layer.input_shape} but receives {received}")
            output = layer.compute_output_shape(received)
            working = layer.working_elements_per_sample(received)
            self.operations += layer.operations_per_sample(received) + sum(
                math.prod(part) for part in (received if layer.several_inputs else [received]))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from None
        output = shape(list(output), f"{where} output shape", self.budget)
        if working > self.budget.max_sample_elements:
            raise ValueError(f"{where} works on {working} values per sample, more than the budget's "
                             f"max_sample_elements ({self.budget.max_sample_elements})")
        if first:
            try:
                self._count_arrays(layer, received)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{where}: {error}") from None
        if self.operations > self.budget.max_operations_per_sample:
            raise ValueError(f"{where}: one prediction would take {self.operations} operations, more than the "
                             f"budget's max_operations_per_sample ({self.budget.max_operations_per_sample})")
        if self.parameter_count > self.budget.max_parameters:
            raise ValueError(f"{where}: the model's weights reach {self.parameter_count} values, more than the "
                             f"budget's max_parameters ({self.budget.max_parameters})")
        return output

    def _count_arrays(self, layer: Layer, received: Any) -> None:
        trainable, non_trainable = self._shapes(layer, received)
        for target, shapes in ((self.arrays.trainable if layer.trainable else self.arrays.frozen, trainable),
                               (self.arrays.state, non_trainable)):
            for key, array_shape in shapes.items():
                self.parameter_count += math.prod(array_shape)
                target[f"{layer.name}/{key}"] = tuple(array_shape)

    def _shapes(self, layer: Layer, received: Any) -> tuple[dict[str, Shape], dict[str, Shape]]:
        """The layer's declared weight shapes; a layer of one's own that declares none is built to learn them,
        allowed no more weight values than the budget has left."""
        if declares_weight_shapes(type(layer)):
            return layer.weight_shapes(received), layer.state_shapes(received)
        layer.weight_budget = self.budget.max_parameters - self.parameter_count
        try:
            layer.build(received, np.random.default_rng(0), np.dtype(self.dtype))
        except MemoryError:
            raise ValueError("its weights do not fit in memory") from None
        finally:
            layer.weight_budget = None
        return ({key: value.shape for key, value in layer.params.items()},
                {key: value.shape for key, value in layer.state.items()})


def sequential(model: dict[str, Any], walk: Walk) -> Shape:
    """Walk a Sequential's layers from its input shape; return the output shape."""
    layer_entries = model["layers"]
    if not isinstance(layer_entries, list) or not 1 <= len(layer_entries) <= walk.budget.max_layers:
        count = f" of {len(layer_entries)}" if isinstance(layer_entries, list) else ""
        raise ValueError(f"model.layers must be a list of 1 to {walk.budget.max_layers} layers. "
                         f"Received {type_name(layer_entries)}{count}")
    current = shape(model["input_shape"], "model.input_shape", walk.budget)
    for index, entry in enumerate(layer_entries):
        layer, where = walk.layer(entry, f"model.layers[{index}]")
        if layer.several_inputs:
            raise ValueError(f"{where}: {type(layer).__name__} merges several tensors, which a Sequential "
                             "cannot give it")
        current = walk.call(layer, where, current, first=True)
    return current


def graph(model: dict[str, Any], walk: Walk) -> list[Shape]:
    """Walk a functional model's calls from its inputs; return the output shapes."""
    budget = walk.budget
    for key in ("inputs", "layers", "calls", "outputs"):
        if not isinstance(model[key], list) or not 1 <= len(model[key]) <= budget.max_layers:
            raise ValueError(f"model.{key} must be a list of 1 to {budget.max_layers} entries. "
                             f"Received {type_name(model[key])}")
    slots: list[Shape] = []
    for index, spec in enumerate(model["inputs"]):
        spec = entries(spec, f"model.inputs[{index}]", ("name", "shape"))
        name = text(f"model.inputs[{index}]", "name", spec["name"], budget.max_name_chars)
        if name in walk.names:
            raise ValueError(f"model.inputs[{index}]: the name {name!r} is used twice")
        walk.names.add(name)
        slots.append(shape(spec["shape"], f"model.inputs[{index}].shape", budget))
    layers: dict[str, tuple[Layer, str]] = {}
    for index, entry in enumerate(model["layers"]):
        layer, where = walk.layer(entry, f"model.layers[{index}]")
        layers[layer.name] = (layer, where)
    first_inputs: dict[str, Any] = {}
    for index, call in enumerate(model["calls"]):
        where = f"model.calls[{index}]"
        call = entries(call, where, ("layer", "inputs"))
        if not isinstance(call["layer"], str) or call["layer"] not in layers:
            raise ValueError(f"{where}.layer must name one of model.layers. Received: {shown(call['layer'])}")
        layer, layer_where = layers[call["layer"]]
        read = call["inputs"]
        if not isinstance(read, list) or not 1 <= len(read) <= budget.max_layers:
            raise ValueError(f"{where}.inputs must be a list of tensor slots. Received: {shown(read)}")
        received_list = [slots[integer(slot, f"{where}.inputs", 0, len(slots) - 1)] for slot in read]
        if not layer.several_inputs and len(received_list) != 1:
            raise ValueError(f"{where}: {call['layer']} takes one tensor. Received {len(received_list)}")
        received = received_list if layer.several_inputs else received_list[0]
        first = call["layer"] not in first_inputs
        if not first and first_inputs[call["layer"]] != received:
            raise ValueError(f"{where}: the shared layer {call['layer']} was called on {first_inputs[call['layer']]}"
                             f" first; it cannot be called on {received}")
        first_inputs.setdefault(call["layer"], received)
        slots.append(walk.call(layer, f"{layer_where} in {where}", received, first))
    unused = sorted(set(layers) - set(first_inputs))
    if unused:
        raise ValueError(f"model.layers: {', '.join(unused[:10])} is never called")
    for key in ("several_inputs", "several_outputs"):
        if not isinstance(model.get(key, False), bool):
            raise TypeError(f"model.{key} must be true or false. Received: {shown(model[key])}")
    if not model.get("several_inputs") and len(model["inputs"]) != 1:
        raise ValueError("model.inputs must hold one input unless model.several_inputs is true")
    if not model.get("several_outputs") and len(model["outputs"]) != 1:
        raise ValueError("model.outputs must hold one slot unless model.several_outputs is true")
    return [slots[integer(slot, "model.outputs", 0, len(slots) - 1)] for slot in model["outputs"]]
