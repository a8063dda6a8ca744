"""ONNX export: every step becomes standard ONNX operators at opset ``OPSET``, built with the ``onnx`` package by
the step's layer class (its ``to_onnx``) through a ``GraphBuilder``.

Our images are channels-last (NHWC); ONNX's Conv, pooling and BatchNormalization want channels first (NCHW).
The builder tracks each tensor's layout and transposes only where a layer needs the other one (once per tensor
and layout, however many layers read it): a residual block stays channels first from convolution to
convolution, and a tensor goes back to our layout before Flatten/Reshape (whose element order is ours) and at
the graph's outputs. Everything is float32. Needs the ``onnx`` extra: ``pip install "neural-networks[onnx]"``.

Graph inputs and outputs are named as the plan names them: ``input`` and ``output`` for a model with one input
and one output, else after the model's inputs and output layers (see ``export.plan``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .plan import ExportError, Plan, Settings, Step, plan
from .writing import write_atomically

OPSET = 17  # ONNX 1.12 (2022) and later; every onnxruntime since 1.12 runs it
PRODUCER = "NeuralNetworks"
BATCH_AXIS_NAME = "batch"
ACTIVATION_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def _to_channels_first(rank: int) -> list[int]:
    """Transpose permutation moving the last axis to axis 1: NHWC -> NCHW for rank 4."""
    return [0, rank - 1, *range(1, rank - 1)]


def _to_channels_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


@dataclass(frozen=True)
class Layout:
    """An ONNX tensor's rank (batch axis included) and whether its channels (our last axis) are at axis 1."""

    rank: int
    channels_first: bool


class GraphBuilder:
    """The ONNX graph being built, and what a layer's ``to_onnx(builder, step)`` uses to add its part:
    ``input``/``inputs`` (the step's tensors, in a layout it asks for), ``constant`` (a weight), ``op`` (a node),
    ``activation``, ``axis``, ``window`` and, last, ``output`` (what the step's output tensor is)."""

    def __init__(self, model_plan: Plan) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.layouts: dict[str, Layout] = {}       # ONNX tensor name -> its layout
        self.values: dict[str, str] = {}           # plan tensor name -> ONNX tensor name
        self.transposed: dict[tuple[str, bool], str] = {}  # (ONNX tensor, channels first) -> its transpose
        self.graph_inputs = {port.name for port in model_plan.inputs}
        for port in model_plan.inputs:
            self.values[port.tensor] = port.name
            self.layouts[port.name] = Layout(len(port.shape) + 1, False)

    # -- for the layers' conversions ---------------------------------------------------------------------------
    def input(self, step: Step, index: int = 0, channels_first: bool | None = None) -> str:
        """The step's input ``index`` as an ONNX tensor, transposed to channels first or last if asked (nothing
        to do below rank 3); ``None`` takes it as it is."""
        tensor = self.values[step.inputs[index]]
        return tensor if channels_first is None else self.in_layout(tensor, channels_first)

    def inputs(self, step: Step) -> list[str]:
        """All the step's inputs, in the layout of the first one (for merges)."""
        first = self.input(step)
        return [first, *(self.input(step, index, self.channels_first(first))
                         for index in range(1, len(step.inputs)))]

    def channels_first(self, tensor: str) -> bool:
        return self.layouts[tensor].channels_first

    def in_layout(self, tensor: str, channels_first: bool) -> str:
        """``tensor`` with its channels first or last: itself, or one shared Transpose of it."""
        layout = self.layouts[tensor]
        if layout.rank < 3 or layout.channels_first == channels_first:
            return tensor
        key = (tensor, channels_first)
        if key not in self.transposed:
            perm = _to_channels_first(layout.rank) if channels_first else _to_channels_last(layout.rank)
            name = f"{tensor}/to_{'nchw' if channels_first else 'nhwc'}"
            self.nodes.append(helper.make_node("Transpose", [tensor], [name], name=name, perm=perm))
            self.layouts[name] = Layout(layout.rank, channels_first)
            self.transposed[key] = name
        return self.transposed[key]

    def constant(self, step: Step, key: str, array: np.ndarray | None = None) -> str:
        """The initializer ``<layer>/<key>``: ``array``, by default the step's weight ``key`` (added once, so
        the calls of a shared layer share it)."""
        name = f"{step.name}/{key}"
        if name not in self.initializers:
            value = step.weights[key] if array is None else array
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(value), name=name)
        return name

    def op(self, op_type: str, inputs: list[str], step: Step, **attributes: object) -> str:
        """Append the node ``op_type(inputs)``; return its output tensor, named ``<step output>/<op>``."""
        base = f"{step.output}/{op_type.lower()}"
        name, number = base, 1
        while name in self.layouts or name in self.initializers or name in self.graph_inputs:
            number += 1
            name = f"{base}_{number}"
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        self.layouts[name] = Layout(0, False)  # reserved; ``output`` records the step's real layout
        return name

    def activation(self, step: Step, tensor: str, settings: Settings, channels_first: bool = False) -> str:
        """``tensor`` after the activation ``settings`` (``export.plan.activation_settings``): softmax runs over
        our last axis, which is axis 1 while channels are first."""
        kind = settings["name"]
        if kind == "linear":
            return tensor
        if kind == "softmax":
            return self.op("Softmax", [tensor], step, axis=1 if channels_first else -1)
        if kind == "leaky_relu":
            return self.op("LeakyRelu", [tensor], step, alpha=settings["alpha"])
        return self.op(ACTIVATION_OPS[kind], [tensor], step)

    def axis(self, tensor: str, sample_axis: int) -> int:
        """ONNX's axis of ``tensor`` for our axis ``sample_axis`` of a sample (0 is the first after the batch)."""
        layout = self.layouts[tensor]
        axis = sample_axis + 1
        if not layout.channels_first or layout.rank < 3:
            return axis
        return 1 if axis == layout.rank - 1 else axis + 1

    @staticmethod
    def window(settings: Settings) -> dict[str, object]:
        """ONNX's attributes of a window layer: kernel_shape, strides, pads (top, left, bottom, right)."""
        top, left, bottom, right = settings["pads"]
        return {"kernel_shape": settings["window"], "strides": settings["strides"],
                "pads": [top, left, bottom, right]}

    def output(self, step: Step, tensor: str, channels_first: bool | None = None) -> None:
        """``tensor`` is the step's output, with its channels first or not (None: as its first input)."""
        if channels_first is None:
            channels_first = self.channels_first(self.values[step.inputs[0]])
        rank = len(step.output_shape) + 1
        if tensor not in self.graph_inputs and tensor not in self.values.values():
            self.layouts[tensor] = Layout(rank, channels_first and rank >= 3)
        self.values[step.output] = tensor

    # -- the graph ---------------------------------------------------------------------------------------------
    def add(self, step: Step) -> None:
        if step.to_onnx is None:
            raise ExportError(f"Cannot export layer {step.name!r} ({step.layer_class}) to ONNX: its kind "
                              f"{step.kind!r} has no ONNX conversion (a to_onnx method)")
        step.to_onnx(self, step)
        if step.output not in self.values:
            raise ExportError(f"The ONNX conversion of layer {step.name!r} ({step.layer_class}) did not give its "
                              "output: its to_onnx must end with builder.output(step, tensor)")

    def finish(self, model_plan: Plan) -> None:
        """Every output back to our layout and named as the plan says (renamed in place, or an Identity)."""
        renamed: dict[str, str] = {}  # ONNX tensor -> the output name it was given
        for port in model_plan.outputs:
            tensor = self.in_layout(self.values[port.tensor], channels_first=False)
            if tensor in self.graph_inputs or tensor in renamed:
                source = renamed.get(tensor, tensor)
                self.nodes.append(helper.make_node("Identity", [source], [port.name], name=port.name))
                continue
            for node in self.nodes:
                node.input[:] = [port.name if name == tensor else name for name in node.input]
                node.output[:] = [port.name if name == tensor else name for name in node.output]
            renamed[tensor] = port.name


def build_onnx(model_plan: Plan) -> onnx.ModelProto:
    """The checked ONNX model of an export plan: inputs ``(batch, *shape)``, outputs in our layout."""
    builder = GraphBuilder(model_plan)
    for model_step in model_plan.steps:
        builder.add(model_step)
    builder.finish(model_plan)

    def info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_AXIS_NAME, *shape])

    graph = helper.make_graph(builder.nodes, model_plan.name,
                              [info(port.name, port.shape) for port in model_plan.inputs],
                              [info(port.name, port.shape) for port in model_plan.outputs],
                              initializer=list(builder.initializers.values()))
    opset = helper.make_opsetid("", OPSET)
    model = helper.make_model(graph, opset_imports=[opset], producer_name=PRODUCER,
                              ir_version=helper.find_min_ir_version_for([opset]),
                              doc_string=f"{model_plan.name}: exported from a NeuralNetworks model")
    helper.set_model_props(model, {"labels": json.dumps(model_plan.labels),
                                   "preprocessing": _preprocessing_text(model_plan.preprocessing)})
    onnx.checker.check_model(model, full_check=True)
    return model


def _preprocessing_text(preprocessing: object) -> str:
    """The model's preprocessing as a metadata string: a style name as it is, an image or table spec as JSON
    (``json.loads`` it and apply it with ``data.folder.prepare_image`` / ``data.table.encode``)."""
    if preprocessing is None:
        return ""
    return preprocessing if isinstance(preprocessing, str) else json.dumps(preprocessing)


def to_onnx(model, path: str | os.PathLike | None = None) -> onnx.ModelProto:
    """Convert a model (or the model file at that path) to ONNX; write it to ``path`` if given (atomically).

    A model with one input and one output takes ``input`` of shape ``(batch, *model.input_shape)`` and gives
    ``output`` of shape ``(batch, *model.output_shape)``; with several, they are named after the model's
    ``layers.Input`` and its output layers (``model.output_names``). All float32 in our layout; the labels (of
    the first output) and preprocessing style are in the model's metadata. Raises ExportError naming a layer
    that cannot be exported.
    """
    proto = build_onnx(plan(model))
    if path is not None:
        write_atomically(Path(path), proto.SerializeToString())
    return proto
