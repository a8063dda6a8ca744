"""Merge layers: several tensors of one shape in, one out (Add, Subtract, Multiply, Average), or tensors joined
along an axis (Concatenate). As Keras' ``keras/src/layers/merging``, they share one base.

Called on a list: ``layers.Add()([x, shortcut])``. ``forward`` takes the list of batches, ``backward`` returns
one gradient per input, in order.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import Layer


class Merge(Layer):
    """Base of the merge layers: a list of at least ``MIN_INPUTS`` tensors."""

    several_inputs = True
    MIN_INPUTS = 2

    def build(self, input_shape, rng, dtype):
        shapes = [tuple(shape) for shape in input_shape]
        self.output_shape = self.compute_output_shape(shapes)
        self.input_shape = tuple(shapes)
        self.dtype = np.dtype(dtype)
        self.params, self.grads, self.state = {}, {}, {}
        self.built = True
        return self.output_shape

    def _check_count(self, shapes: list) -> None:
        name = type(self).__name__
        if not isinstance(shapes, list | tuple) or len(shapes) < self.MIN_INPUTS:
            raise ValueError(f"{name} merges a list of at least {self.MIN_INPUTS} tensors. Received {shapes!r:.100}")

    def _check_batches(self, inputs: list[np.ndarray]) -> None:
        if len(inputs) != len(self.input_shape):
            raise ValueError(f"{self.name or type(self).__name__} expects {len(self.input_shape)} inputs. "
                             f"Received {len(inputs)}")

    def export_settings(self):
        return {}, {}

    @staticmethod
    def _to_onnx(builder, step, op: str) -> None:
        """``op`` folded over the inputs, all in the first input's layout (and so is the output)."""
        inputs = builder.inputs(step)
        y = inputs[0]
        for other in inputs[1:]:
            y = builder.op(op, [y, other], step)
        builder.output(step, y, channels_first=builder.channels_first(inputs[0]))


class ElementwiseMerge(Merge):
    """Inputs of one shape combined value by value."""

    def compute_output_shape(self, input_shape):
        self._check_count(input_shape)
        shapes = [tuple(shape) for shape in input_shape]
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(f"{type(self).__name__} needs inputs of one shape. Received shapes {shapes}")
        return shapes[0]

    @staticmethod
    def _fold(inputs, ufunc: np.ufunc) -> np.ndarray:
        """``ufunc`` applied left to right over the inputs, into one new array (the inputs are left as they are)."""
        result = ufunc(inputs[0], inputs[1])
        for extra in inputs[2:]:
            ufunc(result, extra, out=result)
        return result


class Add(ElementwiseMerge):
    """``y = x_1 + x_2 + ...``; each input's gradient is the output's (a residual connection's shortcut)."""

    @classmethod
    def example(cls):
        return cls(), [(3, 4), (3, 4)]

    def forward(self, inputs, training=False):
        self._check_batches(inputs)
        return self._fold(inputs, np.add)

    def backward(self, grad_output, input_gradient=True):
        return [grad_output] * len(self.input_shape)

    @staticmethod
    def to_onnx(builder, step):
        inputs = builder.inputs(step)
        y = builder.op("Add" if len(inputs) == 2 else "Sum", inputs, step)
        builder.output(step, y, channels_first=builder.channels_first(inputs[0]))


class Subtract(ElementwiseMerge):
    """``y = x_1 - x_2`` (exactly two inputs)."""

    @classmethod
    def example(cls):
        return cls(), [(3, 4), (3, 4)]

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list | tuple) and len(input_shape) != 2:
            raise ValueError(f"Subtract takes exactly 2 tensors. Received {len(input_shape)}")
        return super().compute_output_shape(input_shape)

    def forward(self, inputs, training=False):
        self._check_batches(inputs)
        return inputs[0] - inputs[1]

    def backward(self, grad_output, input_gradient=True):
        return [grad_output, -grad_output]

    @staticmethod
    def to_onnx(builder, step):
        Merge._to_onnx(builder, step, "Sub")


class Multiply(ElementwiseMerge):
    """``y = x_1 * x_2 * ...``; dL/dx_i is the gradient times the product of the other inputs."""

    @classmethod
    def example(cls):
        return cls(), [(5,), (5,), (5,)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inputs: list[np.ndarray] | None = None

    def forward(self, inputs, training=False):
        self._check_batches(inputs)
        self._inputs = list(inputs) if training else None
        return self._fold(inputs, np.multiply)

    def backward(self, grad_output, input_gradient=True):
        if self._inputs is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        grads = []
        for index in range(len(self._inputs)):
            grad = grad_output.copy()
            for other, value in enumerate(self._inputs):
                if other != index:
                    grad *= value
            grads.append(grad)
        return grads

    @staticmethod
    def to_onnx(builder, step):
        Merge._to_onnx(builder, step, "Mul")


class Average(ElementwiseMerge):
    """``y = (x_1 + ... + x_n) / n``; each input's gradient is the output's divided by n."""

    @classmethod
    def example(cls):
        return cls(), [(2, 2, 3), (2, 2, 3)]

    def forward(self, inputs, training=False):
        self._check_batches(inputs)
        total = self._fold(inputs, np.add)
        total /= total.dtype.type(len(inputs))
        return total

    def backward(self, grad_output, input_gradient=True):
        share = grad_output / grad_output.dtype.type(len(self.input_shape))
        return [share] * len(self.input_shape)

    @staticmethod
    def to_onnx(builder, step):
        inputs = builder.inputs(step)
        builder.output(step, builder.op("Mean", inputs, step), channels_first=builder.channels_first(inputs[0]))


class Concatenate(Merge):
    """Inputs joined along ``axis`` (of the sample, as in Keras: -1 is the channels or features); the other axes
    must match. The gradient is the output's, split back at the same places."""

    @classmethod
    def example(cls):
        return cls(), [(2, 3), (2, 5)]

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis == 0:
            raise ValueError(f"Concatenate expects `axis` a non-zero integer (an axis of the sample, -1 the last; "
                             f"0 is the batch). Received: axis={axis!r}")
        self.axis = int(axis)

    def _sample_axis(self, rank: int) -> int:
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis  # the config's axis counts the batch as 0
        if not 0 <= axis < rank:
            raise ValueError(f"Concatenate axis={self.axis} is out of range for samples of rank {rank}")
        return axis

    def compute_output_shape(self, input_shape):
        self._check_count(input_shape)
        shapes = [tuple(shape) for shape in input_shape]
        rank = len(shapes[0])
        axis = self._sample_axis(rank)
        for shape in shapes:
            if len(shape) != rank or shape[:axis] + shape[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                raise ValueError(f"Concatenate(axis={self.axis}) needs inputs whose other axes match. "
                                 f"Received shapes {shapes}")
        return (*shapes[0][:axis], sum(shape[axis] for shape in shapes), *shapes[0][axis + 1:])

    def forward(self, inputs, training=False):
        self._check_batches(inputs)
        return np.concatenate(inputs, axis=self._sample_axis(len(self.output_shape)) + 1)

    def backward(self, grad_output, input_gradient=True):
        axis = self._sample_axis(len(self.output_shape))
        sizes = np.cumsum([shape[axis] for shape in self.input_shape])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(grad_output, sizes, axis=axis + 1)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

    def export_settings(self):
        """``axis``: the joined axis of a sample (0 is the first after the batch), whatever sign the config's."""
        return {"axis": self._sample_axis(len(self.output_shape))}, {}

    @staticmethod
    def to_onnx(builder, step):
        inputs = builder.inputs(step)
        y = builder.op("Concat", inputs, step, axis=builder.axis(inputs[0], step.settings["axis"]))
        builder.output(step, y, channels_first=builder.channels_first(inputs[0]))
