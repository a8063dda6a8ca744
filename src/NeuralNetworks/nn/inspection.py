"""Look inside a model: each layer's output shape, parameter count, activations and gradients on one batch.

``format_summary(model)`` is the table ``model.summary()`` prints. ``inspect(model, x)`` runs ``x`` through the
layers in inference mode and records every layer's output. ``inspect(model, x, y)`` (compiled model) instead
runs one training-mode forward pass and one backward pass, exactly as a training step would but without the
optimizer step, and also records dL/d(output) of every layer and dL/d(parameter) of every weight.
``plot_inspection`` draws their histograms; ``format_inspection`` prints their summary statistics as a table.
The math is in docs/inspection.md.

What inspecting with ``y`` leaves untouched, so that a later ``fit`` gives the same result as without it:
the weights, the optimizer (no step), every layer's ``state`` (BatchNormalization's moving
statistics, updated by a training-mode forward, are put back) and every random generator the model or its
layers hold (Dropout's masks draw from one; their states are put back). What it does change: each layer's
``grads`` (scratch space that every training step overwrites before use). Training-mode caches are cleared
afterwards by an inference pass on one sample, so the model does not keep the inspected batch alive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._structure import astype, parts, rows
from .graph import BackwardStep

if TYPE_CHECKING:
    from .models import Model

HISTOGRAM_BINS = 50
PANEL_WIDTH_INCHES, PANEL_HEIGHT_INCHES = 4.0, 2.2
FIGURE_DPI = 100


@dataclass(frozen=True)
class TensorStats:
    """Summary of one array: mean, standard deviation, extremes, L2 norm and the fraction of exact zeros."""

    mean: float
    std: float
    min: float
    max: float
    norm: float
    zero_fraction: float

    @classmethod
    def of(cls, array: np.ndarray) -> TensorStats:
        values = np.asarray(array, dtype=np.float64).reshape(-1)
        return cls(mean=float(values.mean()), std=float(values.std()), min=float(values.min()),
                   max=float(values.max()), norm=float(np.linalg.norm(values)),
                   zero_fraction=float(np.mean(values == 0)))


@dataclass
class LayerTrace:
    """What one layer did on the inspected batch.

    ``activations`` is the layer's output ``(batch, *output_shape)``. ``dead_fraction`` (ReLU layers only) is
    the fraction of output units that are zero for *every* sample of the batch: units that pass no gradient.
    The gradient fields are None unless ``inspect`` was given ``y``.
    """

    name: str
    layer_type: str
    output_shape: tuple[int, ...]
    param_count: int
    training: bool
    activations: np.ndarray
    activation_stats: TensorStats
    dead_fraction: float | None
    param_stats: dict[str, TensorStats] = field(default_factory=dict)
    output_gradient: np.ndarray | None = None
    output_gradient_stats: TensorStats | None = None
    param_gradients: dict[str, np.ndarray] = field(default_factory=dict)
    param_gradient_stats: dict[str, TensorStats] = field(default_factory=dict)

    def __str__(self) -> str:
        """One line: name, type, shape, parameters, activation statistics and gradient norms."""
        stats = self.activation_stats
        text = (f"{self.name} ({self.layer_type}) {(None, *self.output_shape)}: {self.param_count:,} params; "
                f"activations mean {stats.mean:.4g}, std {stats.std:.4g}, zeros {stats.zero_fraction:.1%}")
        if self.dead_fraction is not None:
            text += f", dead units {self.dead_fraction:.1%}"
        if self.output_gradient_stats is not None:
            text += f"; |dL/d output| {self.output_gradient_stats.norm:.3e}"
        for key, grad_stats in self.param_gradient_stats.items():
            text += f", |dL/d {key}| {grad_stats.norm:.3e}"
        return text


def _random_generators(model: Model) -> list[np.random.Generator]:
    """The model's generator and any a layer holds (Dropout with its own seed), each once."""
    found: dict[int, np.random.Generator] = {id(model.rng): model.rng}
    for layer in model.layers:
        for value in vars(layer).values():
            if isinstance(value, np.random.Generator):
                found.setdefault(id(value), value)
    return list(found.values())


def _dead_fraction(layer: object, activations: np.ndarray) -> float | None:
    activation = getattr(layer, "activation", None)
    if getattr(activation, "name", None) != "relu":
        return None
    never_active = np.all(activations == 0, axis=0)
    return float(np.mean(never_active))


def _trace(layer, activations: np.ndarray, training: bool) -> LayerTrace:
    return LayerTrace(
        name=layer.name, layer_type=type(layer).__name__, output_shape=tuple(layer.output_shape),
        param_count=layer.count_params(), training=training, activations=activations,
        activation_stats=TensorStats.of(activations), dead_fraction=_dead_fraction(layer, activations),
        param_stats={key: TensorStats.of(value) for key, value in layer.params.items()},
    )


def inspect(model: Model, x: object, y: object | None = None) -> list[LayerTrace]:
    """One trace per layer call for the batch ``x``; with targets ``y``, also the gradients of one backward pass.

    ``x`` is a batch of samples (a whole dataset would be traced in one go: pass a slice). ``y`` takes the
    same form as in ``fit``; the model must then be compiled. Nothing the optimizer or a later training run
    depends on is changed (see the module docstring).
    """
    if y is not None and model.loss is None:
        raise RuntimeError("inspect(x, y) needs the loss: call model.compile(optimizer=..., loss=...) first, "
                           "or call inspect(x) for the activations alone")
    x, y = model.prepare_data(x, y)
    batch = astype(x, model.dtype)
    if y is None:
        return _forward_traces(model, batch, training=False)

    generators = _random_generators(model)
    saved_rng = [generator.bit_generator.state for generator in generators]
    saved_state = {(index, key): value.copy() for index, layer in enumerate(model.layers)
                   for key, value in layer.state.items()}
    try:
        traces = _forward_traces(model, batch, training=True)
        _backward_traces(model, traces, y)
    finally:
        for generator, state in zip(generators, saved_rng, strict=True):
            generator.bit_generator.state = state
        for (index, key), value in saved_state.items():
            model.layers[index].state[key][...] = value
        model.forward(rows(batch, slice(0, 1)), training=False)  # drops the training caches that hold the batch
    return traces


def _forward_traces(model: Model, batch: object, training: bool) -> list[LayerTrace]:
    traces = []

    def record(call, output: np.ndarray) -> None:
        traces.append(_trace(call.layer, output.copy(), training))  # a copy: layers keep outputs for backward

    model.graph.forward(parts(batch), training=training, observe=record)
    return traces


def _backward_traces(model: Model, traces: list[LayerTrace], y_true: object) -> None:
    """Backpropagate as ``Model.compute_gradients`` does, through every call (also those below the lowest
    weights, which training skips), recording what flows into each call's ``backward``."""
    graph = model.graph
    fused = model.training_plan.fused_slots
    position = {call.output: index for index, call in enumerate(graph.calls)}
    gradients = {}
    for slot, target in zip(graph.outputs, parts(y_true), strict=True):
        trace = traces[position[slot]]
        _record_output_gradient(trace, model.loss.gradient(target, trace.activations))  # dL/dy_hat, also fused
        gradients[slot] = model.loss.logits_gradient(target, trace.activations) if slot in fused \
            else model.loss.gradient(target, trace.activations)
    steps = tuple(BackwardStep(index, True, graph.calls[index].output in fused)
                  for index in reversed(range(len(graph.calls))))

    def record(call, output_gradient: np.ndarray) -> None:
        trace = traces[position[call.output]]
        if call.output not in fused:
            _record_output_gradient(trace, output_gradient)
        _copy_param_gradients(trace, call.layer)

    graph.backward(steps, gradients, observe=record)


def _record_output_gradient(trace: LayerTrace, output_gradient: np.ndarray) -> None:
    trace.output_gradient = np.array(output_gradient, copy=True)
    trace.output_gradient_stats = TensorStats.of(output_gradient)


def _copy_param_gradients(trace: LayerTrace, layer) -> None:
    trace.param_gradients = {key: value.copy() for key, value in layer.grads.items()}
    trace.param_gradient_stats = {key: TensorStats.of(value) for key, value in layer.grads.items()}


def format_summary(model: Model) -> str:
    """``model.summary()``'s table: each layer's name and type, output shape and parameter count (and for a
    functional model, the layers each call reads: "Connected to"), then the totals."""
    graph = model.graph if model.built else None
    connected = getattr(model, "functional", False) and graph is not None
    rows = [("Layer (type)", "Output Shape", "Param #", *(("Connected to",) if connected else ()))]
    if connected:
        names = {slot: name for slot, name in enumerate(graph.input_names)}
        for name, shape in zip(graph.input_names, graph.input_shapes, strict=True):
            rows.append((f"{name} (InputLayer)", str((None, *shape)), "0", ""))
        for call in graph.calls:
            names[call.output] = call.layer.name
            rows.append((f"{call.layer.name} ({type(call.layer).__name__})", str((None, *call.layer.output_shape)),
                         f"{call.layer.count_params():,}", ", ".join(names[slot] for slot in call.inputs)))
    else:
        for layer in model.layers:
            shape = "?" if layer.output_shape is None else str((None, *layer.output_shape))
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"))
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    rule = "-" * sum(widths)
    lines = [f'Model: "{model.name}"', rule]
    for index, row in enumerate(rows):
        lines.append("".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        lines.append("=" * sum(widths) if index == 0 else rule)
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable)
    non_trainable = sum(a.size for layer in model.layers for a in layer.state.values()) + \
        sum(layer.count_params() for layer in model.layers if not layer.trainable)
    lines += [f"Total params: {trainable + non_trainable:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {non_trainable:,}"]
    if model.labels:
        lines.append(f"Labels: {', '.join(model.labels[i] for i in sorted(model.labels))}")
    return "\n".join(lines)


def format_inspection(traces: list[LayerTrace]) -> str:
    """A text table: one row per layer with shapes, parameters and activation/gradient statistics."""
    header = ("Layer (type)", "Output Shape", "Param #", "act mean", "act std", "zeros", "dead",
              "grad|out| L2", "grad|params| L2")
    rows = [header]
    for trace in traces:
        stats = trace.activation_stats
        grad_out = "-" if trace.output_gradient_stats is None else f"{trace.output_gradient_stats.norm:.3e}"
        grad_params = "-" if not trace.param_gradient_stats else f"{_total_norm(trace.param_gradient_stats):.3e}"
        rows.append((f"{trace.name} ({trace.layer_type})", str((None, *trace.output_shape)),
                     f"{trace.param_count:,}", f"{stats.mean:.4f}", f"{stats.std:.4f}",
                     f"{stats.zero_fraction:.1%}", "-" if trace.dead_fraction is None else f"{trace.dead_fraction:.1%}",
                     grad_out, grad_params))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width)
                       in enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    mode = "training mode, one backward pass" if traces and traces[0].output_gradient is not None else \
        "inference mode"
    lines.append(f"({mode}; batch of {len(traces[0].activations) if traces else 0})")
    return "\n".join(lines)


def _total_norm(stats: dict[str, TensorStats]) -> float:
    return float(np.sqrt(sum(s.norm ** 2 for s in stats.values())))


def plot_inspection(traces: list[LayerTrace], path: str | os.PathLike) -> Path:
    """Save a PNG with one row per layer: histograms of activations, of dL/d(output) and of dL/d(params).

    Counts are on a log scale, so that a spike of zeros (ReLU) does not hide the rest of the distribution.
    """
    if not traces:
        raise ValueError("plot_inspection needs at least one LayerTrace. Received an empty list")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_gradients = traces[0].output_gradient is not None
    columns = 3 if with_gradients else 1
    figure, axes = plt.subplots(len(traces), columns, squeeze=False,
                                figsize=(PANEL_WIDTH_INCHES * columns, PANEL_HEIGHT_INCHES * len(traces)))
    for row, trace in zip(axes, traces, strict=True):
        summary = f"{trace.name} ({trace.layer_type}) {(None, *trace.output_shape)}, {trace.param_count:,} params"
        zeros = f"zeros {trace.activation_stats.zero_fraction:.0%}"
        if trace.dead_fraction is not None:
            zeros += f", dead {trace.dead_fraction:.0%}"
        _histogram(row[0], {"output": trace.activations}, f"{summary}\nactivations ({zeros})")
        if with_gradients:
            _histogram(row[1], {"dL/d output": trace.output_gradient}, "gradient at the output")
            if trace.param_gradients:
                _histogram(row[2], trace.param_gradients, "parameter gradients")
            else:
                row[2].axis("off")
                row[2].text(0.5, 0.5, "no parameters", ha="center", va="center", transform=row[2].transAxes)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=FIGURE_DPI)
    plt.close(figure)
    return path


def _histogram(axis, arrays: dict[str, np.ndarray], title: str) -> None:
    flat = {label: np.asarray(values, dtype=np.float64).reshape(-1) for label, values in arrays.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(flat.values())), bins=HISTOGRAM_BINS)  # shared bins
    for label, values in flat.items():
        axis.hist(values, bins=edges, alpha=0.6, label=label, log=True)
    if len(arrays) > 1:
        axis.legend(fontsize="small")
    axis.set_title(title, fontsize="small")
    axis.tick_params(labelsize="x-small")
