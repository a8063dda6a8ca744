"""Symbolic tensors: what calling a layer on ``layers.Input(...)`` returns, recording the graph as it is written.

``y = layers.Dense(10)(x)`` makes a ``Node`` (the layer, the tensors it was called on) and returns its output
``SymbolicTensor``, whose shape is known from the layer's shape rule. No array is computed and no weight is
created here: ``models.Model(inputs, outputs)`` walks the nodes back from the outputs, builds the layers with
the model's random generator and runs them (see ``nn.graph``). This follows Keras 3's functional API
(``keras/src/ops/node.py``), on layers instead of operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Layer


@dataclass(frozen=True, eq=False)
class Node:
    """One call of ``layer`` on ``inputs``; ``output`` is the tensor it produced. Hashed by identity."""

    layer: Layer
    inputs: tuple[SymbolicTensor, ...]
    output: SymbolicTensor = field(init=False, repr=False)


@dataclass(frozen=True, eq=False)
class SymbolicTensor:
    """A tensor of samples of ``shape`` (batch axis excluded), made by ``node`` (its layer's call)."""

    shape: tuple[int, ...]
    node: Node

    @property
    def name(self) -> str:
        return str(self.node.layer.name or type(self.node.layer).__name__)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) from {self.name}>"


def make_node(layer: Layer, inputs: tuple[SymbolicTensor, ...], output_shape: tuple[int, ...]) -> SymbolicTensor:
    """Record ``layer`` called on ``inputs`` and return the output tensor of ``output_shape``."""
    node = Node(layer, inputs)
    output = SymbolicTensor(tuple(output_shape), node)
    object.__setattr__(node, "output", output)
    return output


def as_tensors(value: object) -> tuple[SymbolicTensor, ...] | None:
    """``value`` as a tuple of symbolic tensors (one, or a list of them), or None if it holds none."""
    if isinstance(value, SymbolicTensor):
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(item, SymbolicTensor) for item in value):
        return tuple(value)
    return None
