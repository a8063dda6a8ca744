"""2-D convolution on channels-last (NHWC) images, vectorised as im2col + one matrix product.

Also the window geometry shared with the pooling layers: output lengths and the "same" padding of Keras and
TensorFlow (output = ceil(size / stride), the odd padding pixel going to the bottom / right).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import initializers
from .._validation import positive_int
from .base import ActivatedLayer

PADDINGS = ("valid", "same")
SPATIAL_RANK = 3  # a sample is (height, width, channels)

Pair = tuple[int, int]


# -- geometry shared with pooling ---------------------------------------------------------------------------
def as_pair(owner: str, name: str, value: object) -> Pair:
    """``3 -> (3, 3)``; ``(2, 3)`` stays; anything else raises naming the argument."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{owner} expects `{name}` to be a positive integer or a pair of them. "
                         f"Received: {name}={value!r}")
    first, second = (positive_int(owner, name, v) for v in value)
    return first, second


def as_padding(owner: str, value: object) -> str:
    if not isinstance(value, str) or value.lower() not in PADDINGS:
        raise ValueError(f"{owner} expects `padding` to be one of {', '.join(PADDINGS)}. Received: padding={value!r}")
    return value.lower()


def output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Output positions along one axis: ``ceil(size / stride)`` for "same", else ``floor((size - window) /
    stride) + 1`` (0 or less when the window does not fit)."""
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1


def padding_amounts(size: int, window: int, stride: int, padding: str) -> Pair:
    """(before, after) padding along one axis; "same" pads ``max((out - 1) * stride + window - size, 0)`` in
    total, the extra pixel after, as TensorFlow does."""
    if padding == "valid":
        return 0, 0
    total = max((output_length(size, window, stride, padding) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


class WindowGeometry:
    """Where each output pixel's window lies in the padded input, for one layer's fixed sample shape."""

    def __init__(self, owner: str, input_shape: tuple[int, ...], window: Pair, strides: Pair, padding: str):
        if len(input_shape) != SPATIAL_RANK:
            raise ValueError(f"{owner} expects samples of shape (height, width, channels). "
                             f"Received input shape {tuple(input_shape)}")
        self.height, self.width, self.channels = input_shape
        self.window, self.strides = window, strides
        self.out_height = output_length(self.height, window[0], strides[0], padding)
        self.out_width = output_length(self.width, window[1], strides[1], padding)
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"{owner}: a {window[0]}x{window[1]} window does not fit in a "
                             f"{self.height}x{self.width} input with padding={padding!r}")
        self.top, bottom = padding_amounts(self.height, window[0], strides[0], padding)
        self.left, right = padding_amounts(self.width, window[1], strides[1], padding)
        self.padded_height = self.height + self.top + bottom
        self.padded_width = self.width + self.left + right
        self.is_padded = self.padded_height != self.height or self.padded_width != self.width

    def position(self, i: int, j: int) -> tuple[slice, slice, slice]:
        """Index of the input pixel at window offset (i, j) for every output pixel: an (n, oh, ow, c) view."""
        stride_h, stride_w = self.strides
        return (slice(None), slice(i, i + stride_h * (self.out_height - 1) + 1, stride_h),
                slice(j, j + stride_w * (self.out_width - 1) + 1, stride_w))

    def interior(self) -> tuple[slice, slice, slice]:
        """Index of the unpadded input inside the padded one."""
        return slice(None), slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def windows(self, padded: np.ndarray) -> np.ndarray:
        """Read-only view (n, oh, ow, kh, kw, c) of every window of ``padded`` (n, hp, wp, c); no copy."""
        batch, row, column, channel = padded.strides
        shape = (len(padded), self.out_height, self.out_width, *self.window, padded.shape[-1])
        strides = (batch, row * self.strides[0], column * self.strides[1], row, column, channel)
        return as_strided(padded, shape=shape, strides=strides, writeable=False)


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

    def clear(self) -> None:
        self._arrays.clear()


def check_batch(owner: str, x: np.ndarray, sample_shape: tuple[int, ...]) -> None:
    if x.ndim != len(sample_shape) + 1 or x.shape[1:] != sample_shape:
        raise ValueError(f"{owner} expects a batch of shape (n, {', '.join(map(str, sample_shape))}). "
                         f"Received an array of shape {x.shape}")


# -- the layer ---------------------------------------------------------------------------------------------
class Conv2D(ActivatedLayer):
    """2-D convolution (cross-correlation, as in Keras): ``y = activation(conv(x, kernel) + bias)``.

    Shapes: x ``(batch, height, width, channels)``, kernel ``(kh, kw, channels, filters)``, bias ``(filters,)``,
    y ``(batch, out_height, out_width, filters)``.

    Forward: every window is copied into one row of ``cols`` ``(batch * oh * ow, kh * kw * channels)`` (im2col),
    then ``z = cols @ kernel`` is a single matrix product. Backward: ``dL/dkernel = cols^T dz`` and
    ``dL/dcols = dz kernel^T`` (one batched product), whose blocks are added back onto their windows (col2im)
    in a loop over the ``kh * kw`` window offsets only.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        initializer: str | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, **kwargs)
        self.filters = positive_int("Conv2D", "filters", filters)
        self.kernel_size = as_pair("Conv2D", "kernel_size", kernel_size)
        self.strides = as_pair("Conv2D", "strides", strides)
        self.padding = as_padding("Conv2D", padding)
        self.initializer = initializer or initializers.default_for(self.activation.name)
        initializers.get(self.initializer)
        self.use_bias = bool(use_bias)
        self.geometry: WindowGeometry | None = None
        self._buffers = BufferCache()
        self._cols: np.ndarray | None = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        geometry = WindowGeometry("Conv2D", input_shape, self.kernel_size, self.strides, self.padding)
        return geometry.out_height, geometry.out_width, self.filters

    def build(self, input_shape, rng, dtype):
        output_shape = super().build(input_shape, rng, dtype)
        self.geometry = WindowGeometry("Conv2D", self.input_shape, self.kernel_size, self.strides, self.padding)
        kh, kw = self.kernel_size
        channels = self.input_shape[-1]
        init = initializers.get(self.initializer)
        shape = (kh, kw, channels, self.filters)
        self.params = {"kernel": init(shape, kh * kw * channels, kh * kw * self.filters, rng, dtype)}
        if self.use_bias:
            self.params["bias"] = np.zeros(self.filters, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._buffers.clear()
        return output_shape

    def multiply_adds_per_sample(self) -> int:
        """Multiply-adds of the forward product per sample (read by the model to choose BLAS threads)."""
        g = self.geometry
        if g is None:
            return self.count_params()
        return g.out_height * g.out_width * self.kernel_size[0] * self.kernel_size[1] * g.channels * self.filters

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        check_batch(self.name or "Conv2D", x, self.input_shape)
        g = self.geometry
        n = len(x)
        if g.is_padded:
            padded = self._buffers.get("padded", (n, g.padded_height, g.padded_width, g.channels), x.dtype,
                                       fill=0)  # the border is written once, as zeros, and never again
            padded[g.interior()] = x
        else:
            padded = x
        # Separate buffers for training and inference batches, which usually differ in size (no reallocation).
        cols = self._buffers.get("cols" if training else "cols_inference",
                                 (n, g.out_height, g.out_width, *self.kernel_size, g.channels), x.dtype)
        np.copyto(cols, g.windows(padded))
        kernel = self.params["kernel"]
        z = cols.reshape(n * g.out_height * g.out_width, -1) @ kernel.reshape(-1, self.filters)
        if self.use_bias:
            z += self.params["bias"]
        self._cols = cols if training else None
        return self.activate(z.reshape(n, g.out_height, g.out_width, self.filters), training)

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._cols is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        g = self.geometry
        n = len(grad_z)
        grad_z = grad_z.reshape(-1, self.filters)
        cols = self._cols.reshape(len(grad_z), -1)
        kernel = self.params["kernel"]
        np.matmul(cols.T, grad_z, out=self.grads["kernel"].reshape(-1, self.filters))
        if self.use_bias:  # a product with ones sums the rows several times faster than np.sum(axis=0)
            ones = self._buffers.get("ones", (len(grad_z),), grad_z.dtype, fill=1)
            np.matmul(ones, grad_z, out=self.grads["bias"])
        if not input_gradient:
            return None
        # dL/dcols in one (batched) product, laid out (kh * kw, batch * oh * ow, channels): each window offset's
        # block is then contiguous, so col2im adds whole blocks (3x faster than strided columns of cols).
        kh, kw = self.kernel_size
        kernel_stack = np.ascontiguousarray(kernel.reshape(kh * kw, g.channels, self.filters).transpose(0, 2, 1))
        # cols is spent once dL/dkernel is known, and has exactly the size of the blocks: reuse its memory.
        grad_blocks = self._cols.reshape(kh * kw, len(grad_z), g.channels)
        self._cols = None  # one backward per training forward
        if grad_blocks.dtype != grad_z.dtype:
            grad_blocks = np.empty(grad_blocks.shape, grad_z.dtype)
        np.matmul(grad_z, kernel_stack, out=grad_blocks)
        grad_blocks = grad_blocks.reshape(kh, kw, n, g.out_height, g.out_width, g.channels)
        grad_padded = np.zeros((n, g.padded_height, g.padded_width, g.channels), dtype=grad_z.dtype)
        for i in range(kh):
            for j in range(kw):
                grad_padded[g.position(i, j)] += grad_blocks[i, j]
        return grad_padded[g.interior()] if g.is_padded else grad_padded

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "initializer": self.initializer,
                "use_bias": self.use_bias}
