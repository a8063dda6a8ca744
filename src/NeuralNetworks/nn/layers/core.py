"""Core layers: Dense, Flatten, Reshape, Activation, Rescaling."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._validation import boolean, finite_real, positive_int
from .. import activations, initializers
from .base import ActivatedLayer, Layer
from .conversion import activation_settings, float32_weights


class Dense(ActivatedLayer):
    """Fully connected layer: ``y = activation(x @ kernel + bias)``.

    Shapes: x ``(batch, in)``, kernel ``(in, units)``, bias ``(units,)``, y ``(batch, units)``.
    Backward: ``dL/dkernel = x^T dz``, ``dL/dbias = sum_batch dz``, ``dL/dx = dz kernel^T``.
    """

    @classmethod
    def example(cls):
        return cls(5), (7,)

    def __init__(
        self,
        units: int,
        activation: activations.Identifier = None,
        initializer: str | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, **kwargs)
        self.units = positive_int("Dense", "units", units)
        self.initializer = initializers.name_or_default(initializer, self.activation.name)
        self.use_bias = boolean("Dense", "use_bias", use_bias)
        self._input: np.ndarray | None = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects a 1-D input of shape (features,), got {input_shape}; add a Flatten layer first"
            )
        return (self.units,)

    def weight_shapes(self, input_shape):
        return {"kernel": (input_shape[0], self.units), **({"bias": (self.units,)} if self.use_bias else {})}

    def build(self, input_shape, rng, dtype):
        output_shape = super().build(input_shape, rng, dtype)
        self.add_weight("kernel", (self.input_shape[0], self.units), self.initializer, rng=rng)
        if self.use_bias:
            self.add_weight("bias", (self.units,))
        return output_shape

    def preactivation(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        z = x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        self._input = x if training else None
        return z

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        np.matmul(self._input.T, grad_z, out=self.grads["kernel"])
        if self.use_bias:
            np.add.reduce(grad_z, axis=0, out=self.grads["bias"])
        return grad_z @ self.params["kernel"].T if input_gradient else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "initializer": self.initializer,
                "use_bias": self.use_bias}

    # -- export (see .conversion) --
    def export_settings(self):
        return {"activation": activation_settings(self)}, float32_weights(self, "kernel", "bias")

    @staticmethod
    def to_onnx(builder, step):
        inputs = [builder.input(step), builder.constant(step, "kernel")]
        if "bias" in step.weights:
            z = builder.op("Gemm", [*inputs, builder.constant(step, "bias")], step)
        else:
            z = builder.op("MatMul", inputs, step)
        builder.output(step, builder.activation(step, z, step.settings["activation"]), channels_first=False)


class Flatten(Layer):
    """Reshape each sample to one dimension: ``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``."""

    @classmethod
    def example(cls):
        return cls(), (3, 4, 2)

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        return x.reshape(len(x), -1)

    def backward(self, grad_output, input_gradient=True):
        return grad_output.reshape((len(grad_output), *self.input_shape))

    def export_settings(self):
        return {}, {}

    @staticmethod
    def to_onnx(builder, step):
        """Reshape in our layout (channels last), whose element order the new shape counts in."""
        shape = builder.constant(step, "shape", np.array([-1, *step.output_shape], dtype=np.int64))
        builder.output(step, builder.op("Reshape", [builder.input(step, channels_first=False), shape], step),
                       channels_first=False)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1)."""

    @classmethod
    def example(cls):
        return cls((2, -1)), (3, 4)

    def __init__(self, target_shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shape = tuple(target_shape) if isinstance(target_shape, Sequence) and not isinstance(target_shape, str) else ()
        if not shape or shape.count(-1) > 1 or not all(
                isinstance(d, numbers.Integral) and not isinstance(d, bool) and (d > 0 or d == -1) for d in shape):
            raise ValueError(
                f"Reshape expects positive integers and at most one -1. Received: target_shape={target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in shape)

    def compute_output_shape(self, input_shape):
        size = math.prod(input_shape)  # exact integers: a product of huge sizes cannot wrap around
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Cannot reshape input of shape {input_shape} to {self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"Cannot reshape input of shape {input_shape} ({size} values) to {self.target_shape} "
                f"({known} values)"
            )
        return self.target_shape

    def forward(self, x, training=False):
        return x.reshape((len(x), *self.output_shape))

    def backward(self, grad_output, input_gradient=True):
        return grad_output.reshape((len(grad_output), *self.input_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}

    def export_settings(self):
        return {}, {}

    to_onnx = staticmethod(Flatten.to_onnx)


class Activation(ActivatedLayer):
    """Apply an activation function on its own: ``y = activation(x)``.

    ``activation`` is a name ("tanh"), an ``activations.ActivationFunction``, or a plain function given with
    its derivative: ``Activation(tanh, tanh_prime)``, the derivative taken with respect to the input.
    """

    @classmethod
    def example(cls):
        return cls("tanh"), (6,)

    def __init__(self, activation: activations.Identifier | Callable, derivative: Callable | None = None,
                 **kwargs: Any) -> None:
        super().__init__(activation=activation if derivative is None else (activation, derivative), **kwargs)

    def preactivation(self, x, training=False):
        return x

    def backward_preactivation(self, grad_z, input_gradient=True):
        return grad_z

    def export_settings(self):
        return {"activation": activation_settings(self)}, {}

    @staticmethod
    def to_onnx(builder, step):
        x = builder.input(step)
        channels_first = builder.channels_first(x)
        builder.output(step, builder.activation(step, x, step.settings["activation"], channels_first))


class Rescaling(Layer):
    """``y = x * scale + offset``: turns uint8 pixels into [0, 1] inside the model, e.g. scale=1/255."""

    @classmethod
    def example(cls):
        return cls(0.5, offset=0.25), (6,)

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = finite_real("Rescaling", "scale", scale)
        self.offset = finite_real("Rescaling", "offset", offset)

    def forward(self, x, training=False):
        y = x * self.scale
        if self.offset:
            y += self.offset
        return y

    def backward(self, grad_output, input_gradient=True):
        return grad_output * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    def export_settings(self):
        return {"scale": float(self.scale), "offset": float(self.offset)}, {}

    @staticmethod
    def to_onnx(builder, step):
        scale = builder.constant(step, "scale", np.float32(step.settings["scale"]))
        y = builder.op("Mul", [builder.input(step), scale], step)
        if step.settings["offset"]:
            y = builder.op("Add", [y, builder.constant(step, "offset", np.float32(step.settings["offset"]))], step)
        builder.output(step, y)


