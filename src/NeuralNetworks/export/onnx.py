"""ONNX export: every layer becomes standard ONNX operators at opset ``OPSET``, built with the ``onnx`` package.

Our images are channels-last (NHWC); ONNX's Conv, pooling and BatchNormalization want channels first (NCHW).
The graph's input and output keep our layout, and the builder transposes only where a layer needs the other
one: once before the first spatial layer, and back before Flatten/Reshape (whose element order is ours).
Everything is float32. Needs the ``onnx`` extra: ``pip install "neural-networks[onnx]"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .plan import Plan, Settings, Step, plan
from .writing import write_atomically

OPSET = 17  # ONNX 1.12 (2022) and later; every onnxruntime since 1.12 runs it
PRODUCER = "NeuralNetworks"
INPUT_NAME, OUTPUT_NAME = "input", "output"
BATCH_AXIS_NAME = "batch"


def _to_channels_first(rank: int) -> list[int]:
    """Transpose permutation moving the last axis to axis 1: NHWC -> NCHW for rank 4."""
    return [0, rank - 1, *range(1, rank - 1)]


def _to_channels_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


class GraphBuilder:
    """Appends nodes to a graph, tracking the current tensor's name, rank and whether its channels are first."""

    def __init__(self, input_rank: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.tensor = INPUT_NAME
        self.rank = input_rank
        self.channels_first = False

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name=name))
        return name

    def node(self, op: str, name: str, extra_inputs: tuple[str, ...] = (), **attributes: object) -> None:
        """Apply ``op`` to the current tensor (plus ``extra_inputs``); its output becomes the current tensor."""
        output = f"{name}/{op.lower()}"
        self.nodes.append(helper.make_node(op, [self.tensor, *extra_inputs], [output], name=output, **attributes))
        self.tensor = output

    def layout(self, name: str, channels_first: bool) -> None:
        """Transpose the current tensor to the requested layout (nothing to do below rank 3)."""
        if self.rank < 3 or self.channels_first == channels_first:
            return
        perm = _to_channels_first(self.rank) if channels_first else _to_channels_last(self.rank)
        self.node("Transpose", f"{name}/to_{'nchw' if channels_first else 'nhwc'}", perm=perm)
        self.channels_first = channels_first

    def finish(self) -> None:
        """Back to our layout, and name the last output ``OUTPUT_NAME``."""
        self.layout("output", channels_first=False)
        if self.tensor == INPUT_NAME:
            self.node("Identity", "output")
        self.nodes[-1].output[0] = OUTPUT_NAME
        self.tensor = OUTPUT_NAME


# -- one function per step kind --------------------------------------------------------------------------------
def _activation(builder: GraphBuilder, name: str, settings: Settings) -> None:
    kind = settings["name"]
    if kind == "linear":
        return
    if kind == "softmax":  # over our last axis, which is axis 1 while channels are first
        axis = 1 if builder.channels_first and builder.rank > 2 else -1
        builder.node("Softmax", name, axis=axis)
    elif kind == "leaky_relu":
        builder.node("LeakyRelu", name, alpha=settings["alpha"])
    else:
        builder.node({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[kind], name)


def _dense(builder: GraphBuilder, step: Step) -> None:
    kernel = builder.constant(f"{step.name}/kernel", step.weights["kernel"])
    if "bias" in step.weights:
        builder.node("Gemm", step.name, (kernel, builder.constant(f"{step.name}/bias", step.weights["bias"])))
    else:
        builder.node("MatMul", step.name, (kernel,))
    _activation(builder, step.name, step.settings["activation"])


def _window_attributes(settings: Settings) -> dict[str, object]:
    top, left, bottom, right = settings["pads"]
    return {"kernel_shape": settings["window"], "strides": settings["strides"], "pads": [top, left, bottom, right]}


def _conv2d(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=True)
    kernel = step.weights["kernel"].transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> ONNX's (out, in, kh, kw)
    inputs = [builder.constant(f"{step.name}/kernel", np.ascontiguousarray(kernel))]
    if "bias" in step.weights:
        inputs.append(builder.constant(f"{step.name}/bias", step.weights["bias"]))
    builder.node("Conv", step.name, tuple(inputs), dilations=[1, 1], **_window_attributes(step.settings))
    _activation(builder, step.name, step.settings["activation"])


def _max_pooling(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=True)
    builder.node("MaxPool", step.name, **_window_attributes(step.settings))  # ONNX pads never win a maximum


def _average_pooling(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=True)
    builder.node("AveragePool", step.name, count_include_pad=0, **_window_attributes(step.settings))


def _global_average_pooling(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=True)
    builder.node("GlobalAveragePool", step.name)  # (n, c, 1, 1)
    builder.node("Flatten", step.name, axis=1)
    builder.rank, builder.channels_first = 2, False


def _batch_normalization(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=True)  # ONNX normalises axis 1
    inputs = tuple(builder.constant(f"{step.name}/{key}", step.weights[key])
                   for key in ("gamma", "beta", "moving_mean", "moving_variance"))
    builder.node("BatchNormalization", step.name, inputs, epsilon=step.settings["epsilon"])


def _rescaling(builder: GraphBuilder, step: Step) -> None:
    scale = builder.constant(f"{step.name}/scale", np.float32(step.settings["scale"]))
    builder.node("Mul", step.name, (scale,))
    if step.settings["offset"]:
        builder.node("Add", step.name, (builder.constant(f"{step.name}/offset",
                                                         np.float32(step.settings["offset"])),))


def _activation_layer(builder: GraphBuilder, step: Step) -> None:
    _activation(builder, step.name, step.settings["activation"])


def _reshape(builder: GraphBuilder, step: Step) -> None:
    builder.layout(step.name, channels_first=False)
    shape = builder.constant(f"{step.name}/shape", np.array([-1, *step.output_shape], dtype=np.int64))
    builder.node("Reshape", step.name, (shape,))
    builder.rank = len(step.output_shape) + 1


BUILDERS: dict[str, Callable[[GraphBuilder, Step], None]] = {
    "Dense": _dense, "Conv2D": _conv2d, "MaxPooling2D": _max_pooling, "AveragePooling2D": _average_pooling,
    "GlobalAveragePooling2D": _global_average_pooling, "BatchNormalization": _batch_normalization,
    "Rescaling": _rescaling, "Activation": _activation_layer, "Flatten": _reshape, "Reshape": _reshape,
}


def build_onnx(model_plan: Plan) -> onnx.ModelProto:
    """The checked ONNX model of an export plan: input ``(batch, *input_shape)``, output in our layout."""
    builder = GraphBuilder(len(model_plan.input_shape) + 1)
    for model_step in model_plan.steps:
        BUILDERS[model_step.kind](builder, model_step)
    builder.finish()
    graph = helper.make_graph(
        builder.nodes, model_plan.name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_AXIS_NAME, *model_plan.input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_AXIS_NAME, *model_plan.output_shape])],
        initializer=builder.initializers,
    )
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
    """Convert a Sequential (or the model file at that path) to ONNX; write it to ``path`` if given (atomically).

    The graph's input is ``input`` of shape ``(batch, *model.input_shape)`` and its output ``output`` of shape
    ``(batch, *model.output_shape)``, both float32 in our layout; the labels and preprocessing style are in the
    model's metadata. Raises ExportError naming a layer that cannot be exported.
    """
    proto = build_onnx(plan(model))
    if path is not None:
        write_atomically(Path(path), proto.SerializeToString())
    return proto
