"""The layer protocol every layer follows: build, forward, backward, get_config; and helpers layers share."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..._validation import boolean, shape_tuple, text
from ...budget import DEFAULT_BUDGET
from .. import activations as activations_module
from .. import initializers
from .nodes import as_tensors, make_node

DETERMINISTIC_INITIALIZERS = ("zeros", "ones")  # the initializers that draw no random numbers
EXAMPLE_INPUT_SHAPE = (4,)  # what ``Layer.example`` gives a layer that takes any sample shape


class Layer:
    """Base layer. Subclasses override ``build`` (if they own weights), ``forward`` and ``backward``.

    Attributes:
        params: trainable arrays, e.g. ``{"kernel": W, "bias": b}``; empty for Flatten.
        grads: same keys and shapes as ``params``, overwritten by every ``backward``.
        state: non-trainable arrays saved with the model (BatchNormalization's moving statistics).
        trainable: False freezes the layer (Keras' semantics): the optimizer leaves its weights alone, a frozen
            BatchNormalization normalises with its moving statistics, and gradients still flow through it to
            the layers below. Saved with the model.
        identity_at_inference: True for layers that only act in training (Dropout, augmentation), so that
            exporters can drop them.
        several_inputs: True for layers called on a list of tensors (the merge layers): ``build``,
            ``compute_output_shape`` and ``forward`` then take lists, and ``backward`` returns one gradient each.
        replica_sum: None in one process. During a data-parallel ``fit`` the engine sets it to a function that
            sums an array in place over every process's copy of the layer (and returns it): a layer whose
            training forward reduces over the batch (BatchNormalization) uses it to see the global batch.

    Create these with ``add_weight`` in ``build`` and update them in place (``out=``, ``[...] =``): once a
    model is built, each array is a view into the model's contiguous buffers (``model.flat``).
    """

    identity_at_inference: bool = False
    several_inputs: bool = False
    replica_sum: Callable[[np.ndarray], np.ndarray] | None = None

    def __init__(self, *, name: str | None = None, input_shape: tuple[int, ...] | None = None,
                 trainable: bool = True) -> None:
        self.name = None if name is None else text(type(self).__name__, "name", name, DEFAULT_BUDGET.max_name_chars)
        self.input_shape = None if input_shape is None else shape_tuple(type(self).__name__, "input_shape",
                                                                        input_shape)
        self.trainable = boolean(type(self).__name__, "trainable", trainable)
        self.weight_budget: int | None = None  # at most this many weight values from add_weight (None: no limit)
        self.output_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.built = False

    # -- the protocol -------------------------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> tuple[int, ...]:
        """Create parameters for this sample shape (batch axis excluded); return the output shape.

        Subclasses call ``super().build(...)`` first, then ``add_weight`` for each array they own.
        """
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.dtype = np.dtype(dtype)
        self.params, self.grads, self.state = {}, {}, {}
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output sample shape for an input sample shape; raise ValueError if the input does not fit."""
        return input_shape

    # What building for ``input_shape`` would allocate, known without building: the model-file loader compares
    # these with the file's arrays and its budget before any layer allocates (see ``saving``). A layer that
    # creates weights in ``build`` overrides the first two; one with working arrays (im2col columns, a padded
    # copy) overrides the third. Pure functions of the constructor arguments and ``input_shape``.
    def weight_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The trainable arrays ``build(input_shape)`` creates with ``add_weight``: name -> shape."""
        return {}

    def state_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The non-trainable arrays ``build(input_shape)`` creates (moving statistics): name -> shape."""
        return {}

    def working_elements_per_sample(self, input_shape: tuple[int, ...]) -> int:
        """Array elements a forward pass holds per sample besides its input and output (0 for most layers)."""
        return 0

    def operations_per_sample(self, input_shape: tuple[int, ...]) -> int:
        """Arithmetic operations of a forward pass per sample, beyond one per input value: a multiply-add per
        weight by default (exact for Dense); layers that slide windows count each window."""
        return sum(math.prod(shape) for shape in self.weight_shapes(input_shape).values())

    def check_weight(self, key: str, value: np.ndarray) -> None:
        """Raise ValueError if ``value`` cannot be this layer's weight ``key`` (finite floats of the right shape
        are checked by the caller): e.g. a negative variance."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output; cache what ``backward`` needs only when ``training``."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Write ``self.grads`` and return dL/dx. Never mutates ``grad_output``.

        With ``input_gradient=False`` dL/dx may be skipped (return None): the model says so to the lowest
        layer with weights, whose input gradient nobody uses. A layer without the argument always returns it.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, so that ``cls(**config)`` rebuilds the layer."""
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None and not self.several_inputs:
            config["input_shape"] = list(self.input_shape)
        if not self.trainable:  # written only when frozen: files of trainable models stay as they were
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    @classmethod
    def example(cls) -> tuple[Layer, Any]:
        """A small instance and an input shape it accepts (a list of shapes for a merge layer): the layer contract
        test (tests/nn/test_layer_contract.py) runs every check on it. Override it when the constructor needs
        arguments."""
        return cls(), EXAMPLE_INPUT_SHAPE

    # -- calling ------------------------------------------------------------------------------------------
    def __call__(self, inputs: object, training: bool = False) -> Any:
        """On symbolic tensors (``layers.Input(...)`` or another layer's output): record the call and return
        the output tensor, for ``models.Model(inputs, outputs)``. On an array batch: run ``forward`` now,
        building the layer for its sample shape first if needed (with a fresh random generator)."""
        tensors = as_tensors(inputs)
        if tensors is None:
            return self._call_eagerly(inputs, training)
        what = self.name or type(self).__name__
        if self.several_inputs != (isinstance(inputs, list | tuple)):
            expected = "a list of tensors" if self.several_inputs else "one tensor"
            raise TypeError(f"{what} is called on {expected}. Received: {inputs!r:.200}")
        shapes: Any = [tensor.shape for tensor in tensors] if self.several_inputs else tensors[0].shape
        expected_shape = self.input_shape
        if expected_shape is not None and (self.built or not self.several_inputs) and \
                _as_shapes(expected_shape) != _as_shapes(shapes):
            raise ValueError(f"{what} {'was built' if self.built else 'declares input_shape'} for inputs of shape "
                             f"{expected_shape}; it cannot be called on {shapes} (a shared layer takes inputs of "
                             "one shape)")
        try:
            output_shape = self.compute_output_shape(shapes)
        except ValueError as error:
            raise ValueError(f"Cannot call {what} on inputs of shape {shapes}: {error}") from None
        return make_node(self, tensors, output_shape)

    def _call_eagerly(self, x: object, training: bool) -> np.ndarray:
        batch = [np.asarray(item) for item in (x if self.several_inputs else [x])]
        if not self.built:
            shapes = [item.shape[1:] for item in batch]
            self.build(shapes if self.several_inputs else shapes[0], np.random.default_rng(), np.dtype("float32"))
        batch = [item.astype(self.dtype, copy=False) for item in batch]
        return self.forward(batch if self.several_inputs else batch[0], training=training)

    # -- helpers ------------------------------------------------------------------------------------------
    def add_weight(self, name: str, shape: tuple[int, ...], initializer: str | initializers.Initializer = "zeros",
                   *, rng: np.random.Generator | None = None, trainable: bool = True) -> np.ndarray:
        """Create a weight of the layer's dtype in ``build``: trainable ones go to ``params`` with a zero
        gradient in ``grads``, the others to ``state``. Fans for the initializer follow from ``shape``."""
        if not self.built:
            raise RuntimeError(f"{type(self).__name__}.add_weight({name!r}) belongs in build(), after "
                               "super().build(...)")
        if name in self.params or name in self.state:
            raise ValueError(f"{self.name or type(self).__name__} already has a weight named {name!r}")
        if rng is None and initializer not in DETERMINISTIC_INITIALIZERS:
            raise ValueError(f"add_weight({name!r}) with initializer {initializer!r} draws random numbers: pass "
                             "the rng that build() received")
        if self.weight_budget is not None:
            self.weight_budget -= math.prod(shape)
            if self.weight_budget < 0:
                raise ValueError(f"{self.name or type(self).__name__}.add_weight({name!r}) of shape {tuple(shape)} "
                                 "goes past the budget's max_parameters")
        init = initializer if callable(initializer) else initializers.get(initializer)
        fan_in, fan_out = initializers.compute_fans(shape)
        value = np.asarray(init(tuple(shape), fan_in, fan_out, rng, self.dtype), dtype=self.dtype)
        if trainable:
            self.params[name] = value
            self.grads[name] = np.zeros_like(value)
        else:
            self.state[name] = value
        return value

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def can_skip_input_gradient(self) -> bool:
        """True when ``backward`` takes ``input_gradient`` (a layer written without it always computes dL/dx)."""
        return "input_gradient" in inspect.signature(self.backward).parameters

    def check_batch(self, x: np.ndarray) -> None:
        """Raise naming the layer unless ``x`` is a batch of samples of ``self.input_shape``."""
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ValueError(f"{self.name or type(self).__name__} expects a batch of shape "
                             f"(n, {', '.join(map(str, self.input_shape))}). Received an array of shape {x.shape}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, output_shape={self.output_shape})"


def _as_shapes(shape: object) -> object:
    """A shape or a list of shapes with every sequence made a tuple, so that lists and tuples compare equal."""
    if isinstance(shape, list | tuple) and shape and isinstance(shape[0], list | tuple):
        return tuple(tuple(item) for item in shape)
    return tuple(shape)


class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z)`` for a pre-activation ``z`` it computes (Dense, Conv2D).

    ``backward_preactivation(dL/dz)`` lets the model skip the softmax Jacobian when softmax is fused with
    cross-entropy, whose gradient at the logits is simply ``(y_hat - y) / m``.
    """

    def __init__(self, activation: activations_module.Identifier = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)
        self._saved: np.ndarray | None = None  # what activation.backward needs: its output (or its input)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.activate(self.preactivation(x, training), training)

    def preactivation(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The pre-activation ``z`` of a batch (keeping what ``backward_preactivation`` needs if training)."""
        raise NotImplementedError

    def activate(self, z: np.ndarray, training: bool) -> np.ndarray:
        y = self.activation(z)
        self._saved = (z if self.activation.needs_input else y) if training else None
        return y

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        return self.backward_preactivation(self.activation_gradient(grad_output), input_gradient)

    def activation_gradient(self, grad_output: np.ndarray) -> np.ndarray:
        """dL/da from dL/dy, through the activation ``y = activation(a)`` of the last training ``activate``
        alone (``a`` is ``z``, or the pooled ``z`` when the model runs the activation after a max pooling)."""
        if self._saved is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        return self.activation.backward(self._saved, grad_output)

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Write grads and return dL/dx from dL/dz, the gradient at the pre-activation.

        With ``input_gradient=False`` (the model's first layer with weights) dL/dx is skipped: nothing uses it.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation.get_config()}


class BufferCache:
    """Scratch arrays reused from batch to batch (allocating and page-faulting megabytes each step is slow).

    Only arrays that never leave the layer live here; outputs and returned gradients are always fresh.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, key: str, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None) -> np.ndarray:
        """The cached array for ``key``, reallocated (and filled with ``fill``, if given) when its shape changes."""
        array = self._arrays.get(key)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[key] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        return array

    def column_sums(self, matrix: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The sums of ``matrix``'s columns (2-D) as a product with a kept vector of ones: several times faster
        than ``matrix.sum(axis=0)`` (a bias gradient, per-channel statistics)."""
        ones = self.get("ones", (len(matrix),), matrix.dtype, fill=1)
        return np.matmul(ones, matrix, out=out)

    def clear(self) -> None:
        self._arrays.clear()
