"""A model's layers as a graph of calls, and the two walks over it: forward in topological order, backward in
reverse, summing the gradients where a tensor feeds several layers (micrograd's ``backward()``, on layers).

Tensors are numbered slots: the model's inputs are slots ``0 .. n_inputs - 1`` and call ``i`` writes slot
``n_inputs + i``. A ``Sequential`` is the chain ``layer_0(slot 0) -> slot 1 -> ...``; a functional model's
calls come from the nodes its symbolic tensors recorded (``from_tensors``).

A layer called more than once (weights shared) keeps its training caches per call: after each call's forward
the graph copies the layer's caches, puts them back before that call's backward, and sums the weight
gradients of all its calls.

The walks also follow one rewrite, decided when the graph is made (``pooled_activations``): a ReLU layer whose
output only a max pooling reads has its activation run *after* the pooling, on a quarter of the values for 2x2
windows. ``relu(maxpool(z)) == maxpool(relu(z))`` exactly, and so do the gradients: ReLU is monotone, so a
window's first maximum is the same before and after it when that maximum is positive, and the gradient is 0
either way when it is not. Each layer keeps its own math (``preactivation``, ``activate``,
``backward_preactivation``), gradient check and export.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .activations import ReLU
from .layers import ActivatedLayer, InputLayer, Layer, MaxPooling2D
from .layers.nodes import Node, SymbolicTensor

# A layer's attributes that are its definition and weights, not its caches of the last forward pass.
DEFINITION = frozenset({"name", "input_shape", "output_shape", "dtype", "params", "grads", "state", "built",
                        "trainable", "replica_sum", "weight_budget"})

Observer = Callable[["Call", np.ndarray], None]

# Activations f with f(max(window)) == max(f(window)) *exactly*, and whose gradient then agrees too: in floats,
# not only on paper. ReLU maps every value <= 0 to 0 and keeps the others, so a window's first maximum is the
# same before and after it (or the window's gradient is 0 both ways). Not LeakyReLU, sigmoid or tanh: rounding
# can make two different inputs of a window equal after them (in float32, leaky_relu(-1.7999998) ==
# leaky_relu(-1.7999997) and tanh(5) == tanh(5.0000005)), moving the first maximum, which takes the gradient, to
# another pixel; not Linear, where there is nothing to save.
EXACT_UNDER_MAX_POOLING: tuple[type, ...] = (ReLU,)


@dataclass(frozen=True)
class Call:
    """``layer`` applied to the tensors in slots ``inputs``, writing slot ``output``."""

    layer: Layer
    inputs: tuple[int, ...]
    output: int

    def arguments(self, values: list) -> np.ndarray | list[np.ndarray]:
        return [values[slot] for slot in self.inputs] if self.layer.several_inputs else values[self.inputs[0]]


@dataclass(frozen=True)
class BackwardStep:
    """One call's part of the backward walk: whether it needs dL/dx, and whether its output's softmax is fused
    with the loss (then its ``backward_preactivation`` receives the gradient at the logits)."""

    index: int
    input_gradient: bool
    fused: bool


class Graph:
    """The calls of a model in topological order, its input slots and its output slots."""

    def __init__(self, input_shapes: Sequence[tuple[int, ...]], calls: Sequence[Call], outputs: Sequence[int],
                 input_names: Sequence[str] | None = None) -> None:
        self.input_shapes = [tuple(shape) for shape in input_shapes]
        self.input_names = list(input_names or (f"input_{i + 1}" for i in range(len(self.input_shapes))))
        self.calls = tuple(calls)
        self.outputs = tuple(outputs)
        self.slots = len(self.input_shapes) + len(self.calls)
        self.layers: list[Layer] = list(dict.fromkeys(call.layer for call in self.calls))
        counts: dict[int, int] = {}
        for call in self.calls:
            counts[id(call.layer)] = counts.get(id(call.layer), 0) + 1
        self.shared = {id(layer) for layer in self.layers if counts[id(layer)] > 1}
        consumers: dict[int, list[int]] = {}
        for index, call in enumerate(self.calls):
            for slot in call.inputs:
                consumers.setdefault(slot, []).append(index)
        self.consumers = consumers
        # after call i, the slots nobody reads any more (inference frees them as it goes)
        last_use: dict[int, int] = {slot: max(users) for slot, users in consumers.items()}
        self._free_after = [tuple(slot for slot in set(call.inputs) if last_use[slot] == index
                                  and slot not in self.outputs) for index, call in enumerate(self.calls)]
        self._snapshots: dict[int, dict] = {}
        # The execution plan: max pooling call -> the call whose activation runs after it (see the module
        # docstring). Empty it to run every layer as written.
        self.pooled_activations: dict[int, int] = _pooled_activations(self.calls, consumers, self.outputs,
                                                                      self.shared)
        self._pooled_last: dict[int, int] = {}  # the plan the last forward followed, which backward must follow

    @classmethod
    def chain(cls, input_shape: tuple[int, ...], layers: Sequence[Layer]) -> Graph:
        """A ``Sequential``: each layer reads the previous one's output."""
        return cls([input_shape], [Call(layer, (i,), i + 1) for i, layer in enumerate(layers)], [len(layers)])

    def output_shapes(self) -> list[tuple[int, ...]]:
        shapes = {slot: shape for slot, shape in enumerate(self.input_shapes)}
        for call in self.calls:
            shapes[call.output] = tuple(call.layer.output_shape)
        return [shapes[slot] for slot in self.outputs]

    # -- forward --------------------------------------------------------------------------------------------
    def forward(self, inputs: Sequence[np.ndarray], training: bool = False,
                observe: Observer | None = None) -> list[np.ndarray]:
        """Run every call on the batches ``inputs`` (one per input slot); return the output slots' batches.

        ``observe(call, output)`` sees each call's output as the layer computes it: the plan's activations after
        pooling are then run where their layers are (the pooling sees activated values)."""
        values: list = [*inputs, *([None] * len(self.calls))]
        self._snapshots.clear()
        pooled = self._pooled_last = self.pooled_activations if observe is None else {}
        deferred = set(pooled.values())
        for index, call in enumerate(self.calls):
            if index in deferred:  # z only: the activation runs after the pooling that reads it
                values[call.output] = call.layer.preactivation(values[call.inputs[0]], training)
            elif index in pooled:
                pooled_z = call.layer.forward(values[call.inputs[0]], training=training)
                values[call.output] = self.calls[pooled[index]].layer.activate(pooled_z, training)
            else:
                values[call.output] = call.layer.forward(call.arguments(values), training=training)
            if training and id(call.layer) in self.shared:
                self._snapshots[index] = _caches(call.layer)
            if observe is not None:
                observe(call, values[call.output])
            if not training:
                for slot in self._free_after[index]:
                    values[slot] = None
        return [values[slot] for slot in self.outputs]

    # -- backward -------------------------------------------------------------------------------------------
    def backward_steps(self, fusable_outputs: set[int]) -> tuple[BackwardStep, ...]:
        """The calls the backward walk runs, last first: those with trainable weights and those between such a
        call and an output. Layers below every trainable weight have nothing to learn, and the lowest call
        with weights skips its input gradient, which would go nowhere (PyTorch skips it too).
        ``fusable_outputs`` are the output slots whose softmax may be fused with the loss."""
        learns = [bool(call.layer.params) and call.layer.trainable for call in self.calls]
        needs = [False] * self.slots  # the slot's value depends on a trainable weight
        for index, call in enumerate(self.calls):
            needs[call.output] = learns[index] or any(needs[slot] for slot in call.inputs)
        steps = []
        for index in reversed(range(len(self.calls))):
            call = self.calls[index]
            if not needs[call.output]:
                continue
            fused = call.output in fusable_outputs and call.output not in self.consumers \
                and hasattr(call.layer, "backward_preactivation")
            steps.append(BackwardStep(index, any(needs[slot] for slot in call.inputs), fused))
        return tuple(steps)

    def backward(self, steps: Sequence[BackwardStep], output_gradients: dict[int, np.ndarray],
                 observe: Observer | None = None) -> None:
        """Walk ``steps`` from the gradients at the output slots (at the logits for fused steps), writing every
        trainable layer's ``grads``; the last forward must have been a training one, and must have observed its
        calls if this walk observes them (so that each call received what it gave)."""
        pooled = self._pooled_last
        if observe is not None and pooled:
            raise RuntimeError("Graph.backward(observe=...) must follow a forward(observe=...): the last forward ran "
                               "activations after pooling, so the gradients between them are not the layers' own")
        deferred = set(pooled.values())
        grads: dict[int, np.ndarray] = dict(output_gradients)
        sums: dict[int, dict[str, np.ndarray]] = {}
        originals: dict[int, dict] = {}
        try:
            for step in steps:
                call = self.calls[step.index]
                layer = call.layer
                grad = grads.pop(call.output, None)
                if grad is None:
                    continue
                if id(layer) in self.shared:
                    originals.setdefault(id(layer), {key: vars(layer)[key] for key in self._snapshots[step.index]})
                    vars(layer).update(self._snapshots[step.index])
                if step.index in pooled:  # dL/dy -> dL/d(pooled z): the activation that ran after this pooling
                    grad = self.calls[pooled[step.index]].layer.activation_gradient(grad)
                preactivation = step.fused or step.index in deferred  # the gradient arrived at z
                run = layer.backward_preactivation if preactivation else layer.backward
                if step.input_gradient or not layer.can_skip_input_gradient():
                    result = run(grad)
                else:
                    result = run(grad, input_gradient=False)
                if observe is not None:
                    observe(call, grad)
                if id(layer) in self.shared and layer.grads:
                    _accumulate(sums.setdefault(id(layer), {}), layer.grads)
                if step.input_gradient:
                    parts = result if layer.several_inputs else [result]
                    for slot, part in zip(call.inputs, parts, strict=True):
                        if slot >= len(self.input_shapes):  # the model's inputs need no gradient
                            grads[slot] = part if slot not in grads else grads[slot] + part
        finally:
            for layer in self.layers:
                if id(layer) in originals:
                    vars(layer).update(originals[id(layer)])
        for layer in self.layers:
            for key, total in sums.get(id(layer), {}).items():
                layer.grads[key][...] = total


def _pooled_activations(calls: Sequence[Call], consumers: dict[int, list[int]], outputs: Sequence[int],
                        shared: set[int]) -> dict[int, int]:
    """The plan of ``Graph.pooled_activations``: for each max pooling call whose input only it reads, made by an
    activated layer whose activation commutes with it exactly, pooling call -> that layer's call. Shared
    layers (their caches are per call) and model outputs (someone reads the activated values) stay as written."""
    plan = {}
    for index, call in enumerate(calls):
        users = consumers.get(call.output, [])
        if len(users) != 1 or call.output in outputs or not _splits_activation(call.layer):
            continue
        pooling = calls[users[0]].layer
        if _max_pooling(pooling) and id(call.layer) not in shared and id(pooling) not in shared:
            plan[users[0]] = index
    return plan


def _splits_activation(layer: Layer) -> bool:
    """True when ``layer``'s forward is its ``preactivation`` then ``activate``, and backward the same way back
    (not a subclass of one's own computing them otherwise), with an activation that max pooling commutes with."""
    cls = type(layer)
    return isinstance(layer, ActivatedLayer) and type(layer.activation) in EXACT_UNDER_MAX_POOLING \
        and cls.forward is ActivatedLayer.forward and cls.backward is ActivatedLayer.backward \
        and cls.activate is ActivatedLayer.activate and cls.preactivation is not ActivatedLayer.preactivation


def _max_pooling(layer: Layer) -> bool:
    """True for MaxPooling2D as the library writes it. Its "same" padding (-inf) commutes too: every window
    holds at least one pixel of the image (``windows.padding_amounts``), so padding never is a window's maximum.
    Average pooling does not commute with ReLU."""
    cls = type(layer)
    return isinstance(layer, MaxPooling2D) and cls.forward is MaxPooling2D.forward \
        and cls.backward is MaxPooling2D.backward


def _caches(layer: Layer) -> dict:
    """Copies of what ``layer`` keeps from its last forward pass (everything but its definition and weights)."""
    return {key: copy.deepcopy(value) for key, value in vars(layer).items()
            if key not in DEFINITION and not isinstance(value, np.random.Generator)}


def _accumulate(sums: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    for key, value in grads.items():
        if key in sums:
            sums[key] += value
        else:
            sums[key] = value.copy()


# -- functional models: from symbolic tensors ----------------------------------------------------------------------
def from_tensors(inputs: Sequence[SymbolicTensor], outputs: Sequence[SymbolicTensor]) -> Graph:
    """The graph that computes ``outputs`` from ``inputs`` (each ``layers.Input(...)``), in topological order.

    Raises ValueError when an output depends on an ``Input`` that is not among ``inputs``, or an input is
    given twice or is not an ``Input``."""
    for tensor in inputs:
        if not isinstance(tensor, SymbolicTensor) or not isinstance(tensor.node.layer, InputLayer):
            raise TypeError(f"Model inputs must be tensors made by layers.Input(...). Received: {tensor!r:.100}")
    if len({id(tensor) for tensor in inputs}) != len(inputs):
        raise ValueError("Model inputs must be distinct layers.Input tensors; one is given twice")
    for tensor in outputs:
        if not isinstance(tensor, SymbolicTensor):
            raise TypeError(f"Model outputs must be tensors returned by calling layers. Received: {tensor!r:.100}")
    slots: dict[int, int] = {id(tensor.node): slot for slot, tensor in enumerate(inputs)}
    calls: list[Call] = []
    for node in _topological(outputs):
        if isinstance(node.layer, InputLayer):
            if id(node) not in slots:
                raise ValueError(f"The model's outputs depend on the input {node.output!r}, which is not among the "
                                 "model's inputs; pass it in `inputs`")
            continue
        slot = len(inputs) + len(calls)
        calls.append(Call(node.layer, tuple(slots[id(parent.node)] for parent in node.inputs), slot))
        slots[id(node)] = slot
    names = [str(tensor.node.layer.name or f"input_{i + 1}") for i, tensor in enumerate(inputs)]
    return Graph([tensor.shape for tensor in inputs], calls, [slots[id(tensor.node)] for tensor in outputs], names)


def _topological(outputs: Sequence[SymbolicTensor]) -> list[Node]:
    """Every node the outputs depend on, each after the nodes it reads (iterative depth-first search)."""
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(tensor.node, False) for tensor in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((parent.node, False) for parent in reversed(node.inputs) if id(parent.node) not in done)
    return order
