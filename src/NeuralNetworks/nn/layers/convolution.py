"""2-D convolution on channels-last (NHWC) images, vectorised as im2col + one matrix product."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._validation import boolean, positive_int
from .. import activations, initializers
from . import winograd
from .base import ActivatedLayer, BufferCache
from .conversion import activation_settings, float32_weights, window_settings
from .windows import WindowGeometry, as_padding, as_pair


class Conv2D(ActivatedLayer):
    """2-D convolution (cross-correlation, as in Keras): ``y = activation(conv(x, kernel) + bias)``.

    Shapes: x ``(batch, height, width, channels)``, kernel ``(kh, kw, channels, filters)``, bias ``(filters,)``,
    y ``(batch, out_height, out_width, filters)``.

    Forward: every window is copied into one row of ``cols`` ``(batch * oh * ow, kh * kw * channels)`` (im2col),
    then ``z = cols @ kernel`` is a single matrix product. Backward: ``dL/dkernel = cols^T dz`` and
    ``dL/dcols = dz kernel^T`` (one batched product), whose blocks are added back onto their windows (col2im)
    in a loop over the ``kh * kw`` window offsets only.

    A stride-1 3x3 convolution of 32 channels or more, on a batch of 1024 output pixels or more, runs as
    Winograd F(2x2, 3x3) instead (``winograd.applies``): 2.25x fewer multiply-adds, forward and backward, equal
    to the direct form up to rounding. Inference on one channel (grey images) builds the columns transposed
    (``_single_channel_product``).
    """

    @classmethod
    def example(cls):
        return cls(3, (3, 2), strides=2, padding="same", activation="tanh"), (9, 8, 2)

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        activation: activations.Identifier = None,
        initializer: str | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, **kwargs)
        self.filters = positive_int("Conv2D", "filters", filters)
        self.kernel_size = as_pair("Conv2D", "kernel_size", kernel_size)
        self.strides = as_pair("Conv2D", "strides", strides)
        self.padding = as_padding("Conv2D", padding)
        self.initializer = initializers.name_or_default(initializer, self.activation.name)
        self.use_bias = boolean("Conv2D", "use_bias", use_bias)
        self.geometry: WindowGeometry | None = None
        self._buffers = BufferCache()
        self._cols: np.ndarray | None = None
        self._cols_transposed: np.ndarray | None = None  # the one-channel columns of a training forward
        self._tiles: np.ndarray | None = None  # the transformed input tiles of a Winograd training forward

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        geometry = WindowGeometry("Conv2D", input_shape, self.kernel_size, self.strides, self.padding)
        return geometry.out_height, geometry.out_width, self.filters

    def weight_shapes(self, input_shape):
        kernel = (*self.kernel_size, input_shape[-1], self.filters)
        return {"kernel": kernel, **({"bias": (self.filters,)} if self.use_bias else {})}

    def working_elements_per_sample(self, input_shape):
        """The im2col columns (one row of kh * kw * channels per output pixel, plus a 1 for the bias with one
        channel, see ``_single_channel_product``) and the padded input."""
        g = WindowGeometry("Conv2D", input_shape, self.kernel_size, self.strides, self.padding)
        taps = self.kernel_size[0] * self.kernel_size[1] * g.channels + (g.channels == 1)
        columns = g.out_height * g.out_width * taps
        direct = columns + (g.padded_height * g.padded_width * g.channels if g.is_padded else 0)
        if not winograd.applies(self.kernel_size, self.strides, g.channels, g.out_height, g.out_width):
            return direct
        return max(direct, winograd.working_elements(g.height, g.width, g.out_height, g.out_width, g.channels,
                                                     self.filters))

    def operations_per_sample(self, input_shape):
        """A multiply-add per kernel weight per output pixel."""
        g = WindowGeometry("Conv2D", input_shape, self.kernel_size, self.strides, self.padding)
        return g.out_height * g.out_width * self.kernel_size[0] * self.kernel_size[1] * g.channels * self.filters

    def build(self, input_shape, rng, dtype):
        output_shape = super().build(input_shape, rng, dtype)
        self.geometry = WindowGeometry("Conv2D", self.input_shape, self.kernel_size, self.strides, self.padding)
        self.add_weight("kernel", (*self.kernel_size, self.input_shape[-1], self.filters), self.initializer, rng=rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,))
        self._buffers.clear()
        return output_shape

    def multiply_adds_per_sample(self) -> int:
        """Multiply-adds of the forward product per sample (read by the model to choose BLAS threads)."""
        g = self.geometry
        if g is None:
            return self.count_params()
        return g.out_height * g.out_width * self.kernel_size[0] * self.kernel_size[1] * g.channels * self.filters

    def preactivation(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_batch(x)
        g = self.geometry
        n = len(x)
        kernel = self.params["kernel"]
        self._cols = self._tiles = self._cols_transposed = None
        if self._uses_winograd(n):
            z = self._winograd_forward(x, training)
        elif g.channels == 1:
            z = self._single_channel_product(x, training)  # the bias included
            return z.reshape(n, g.out_height, g.out_width, self.filters)
        else:
            cols = self._im2col(x, training)
            z = cols.reshape(n * g.out_height * g.out_width, -1) @ kernel.reshape(-1, self.filters)
            self._cols = cols if training else None
        if self.use_bias:
            z += self.params["bias"]
        return z.reshape(n, g.out_height, g.out_width, self.filters)

    def _single_channel_product(self, x: np.ndarray, training: bool) -> np.ndarray:
        """z = conv(x, kernel) + bias for a batch of one-channel images (the first layer on grey ones).

        The columns are built transposed, ``(kh * kw + 1, n * oh * ow)``: one row per window offset, each a
        strided copy of whole image rows (9 window offsets of 1 value each made a row of cols 9 short runs:
        8x slower), and a last row of ones, written once, that adds the bias inside the product. Training
        keeps them for dL/dkernel (``_single_channel_backward``).
        """
        g = self.geometry
        taps = self.kernel_size[0] * self.kernel_size[1]
        padded = self._padded(x, "padded" if training else "padded_inference")
        cols = self._buffers.get("cols_transposed" if training else "cols_transposed_inference",
                                 (taps + 1, len(x) * g.out_height * g.out_width), x.dtype,
                                 fill=1)  # the last row stays ones
        np.copyto(cols[:taps].reshape(*self.kernel_size, len(x), g.out_height, g.out_width, 1), g.offsets(padded))
        self._cols_transposed = cols if training else None
        weights = self.params["kernel"].reshape(taps, self.filters)
        if not self.use_bias:
            return cols[:taps].T @ weights
        return cols.T @ np.concatenate((weights, self.params["bias"][np.newaxis]))

    def _uses_winograd(self, batch: int) -> bool:
        g = self.geometry
        return (winograd.applies(self.kernel_size, self.strides, g.channels, g.out_height, g.out_width)
                and winograd.worth_it(batch, g.out_height, g.out_width))

    def _winograd_forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """z = conv(x, kernel) as Winograd F(2x2, 3x3); keeps the transformed tiles for backward if training."""
        g = self.geometry
        n = len(x)
        suffix = "" if training else "_inference"
        rows, columns = winograd.tiles(g.out_height, g.out_width)
        padded = self._buffers.get("winograd_padded" + suffix,
                                   winograd.padded_shape(n, g.out_height, g.out_width, g.channels), x.dtype,
                                   fill=0)  # the border is written once, as zeros, and never again
        padded[:, g.top:g.top + g.height, g.left:g.left + g.width] = x
        tiles = self._buffers.get("winograd_tiles" + suffix, (winograd.POSITIONS, n, rows, columns, g.channels),
                                  x.dtype)
        winograd.transform_input(padded, tiles, self._winograd_scratch(n, suffix, x.dtype))
        products = self._buffers.get("winograd_products" + suffix,
                                     (winograd.POSITIONS, n, rows, columns, self.filters), x.dtype)
        winograd.multiply(tiles, winograd.transform_kernel(self.params["kernel"]), products)
        z = np.empty((n, g.out_height, g.out_width, self.filters), x.dtype)
        winograd.transform_output(products, z, self._winograd_scratch(n, suffix, x.dtype))
        self._tiles = tiles if training else None
        return z.reshape(-1, self.filters)

    def _winograd_scratch(self, batch: int, suffix: str, dtype: np.dtype) -> np.ndarray:
        """One scratch array for the transforms of this layer's forward and backward, the largest they need."""
        g = self.geometry
        out_tiles, in_tiles = winograd.tiles(g.out_height, g.out_width), winograd.tiles(g.height, g.width)
        size = max(winograd.input_scratch_size(batch, *out_tiles, g.channels),
                   winograd.output_scratch_size(batch, *out_tiles, self.filters),
                   winograd.gradient_scratch_size(batch, *out_tiles, self.filters),
                   winograd.input_scratch_size(batch, *in_tiles, self.filters),
                   winograd.output_scratch_size(batch, *in_tiles, g.channels))
        return self._buffers.get("winograd_scratch" + suffix, (size,), dtype)

    def _winograd_backward(self, grad_z: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        """dL/dkernel from the kept tiles and dL/dx as a Winograd correlation of dL/dz with the turned kernel.

        Spent buffers are reused where shapes agree (always for "same" padding on even sizes), so that training
        holds no more than the forward's: the forward's products take the transformed output gradient, then
        the transformed dL/dz; the forward's tiles, once dL/dkernel is known, the products of dL/dx.
        """
        g = self.geometry
        n = len(grad_z)
        tiles, self._tiles = self._tiles, None
        rows, columns = winograd.tiles(g.out_height, g.out_width)
        tiled = grad_z
        if (winograd.TILE * rows, winograd.TILE * columns) != (g.out_height, g.out_width):
            tiled = self._buffers.get("winograd_tiled_gradient", (n, winograd.TILE * rows, winograd.TILE * columns,
                                                                   self.filters), grad_z.dtype, fill=0)
            tiled[:, :g.out_height, :g.out_width] = grad_z  # zeros where tiles stick out of an odd-sized output
        grad_tiles = self._buffers.get("winograd_products", (winograd.POSITIONS, n, rows, columns, self.filters),
                                       grad_z.dtype)
        scratch = self._winograd_scratch(n, "", grad_z.dtype)
        winograd.transform_output_gradient(tiled, grad_tiles, scratch)
        grad_u = np.matmul(tiles.reshape(winograd.POSITIONS, -1, g.channels).transpose(0, 2, 1),
                           grad_tiles.reshape(winograd.POSITIONS, -1, self.filters))
        winograd.kernel_gradient(grad_u, self.grads["kernel"])
        if not input_gradient:
            return None
        # dL/dx[y, x] = sum over the window of dL/dz[y + top - i, x + left - j] kernel[i, j]^T: a 'valid'
        # correlation of dL/dz padded by (2 - top, 2 - left) with the kernel turned by 180 degrees.
        grad_rows, grad_columns = winograd.tiles(g.height, g.width)
        padded = self._buffers.get("winograd_padded_gradient",
                                   winograd.padded_shape(n, g.height, g.width, self.filters), grad_z.dtype, fill=0)
        top, left = winograd.KERNEL - 1 - g.top, winograd.KERNEL - 1 - g.left
        padded[:, top:top + g.out_height, left:left + g.out_width] = grad_z
        shape = (winograd.POSITIONS, n, grad_rows, grad_columns, self.filters)
        if grad_tiles.shape != shape:
            grad_tiles = self._buffers.get("winograd_input_gradient_tiles", shape, grad_z.dtype)
        winograd.transform_input(padded, grad_tiles, scratch)
        grad_products = tiles if tiles.shape == (*shape[:-1], g.channels) else self._buffers.get(
            "winograd_gradient_products", (*shape[:-1], g.channels), grad_z.dtype)
        turned = winograd.transform_kernel(winograd.turned_kernel(self.params["kernel"]))
        winograd.multiply(grad_tiles, turned, grad_products)
        return winograd.transform_output(grad_products, np.empty((n, g.height, g.width, g.channels), grad_z.dtype),
                                         scratch)

    def _im2col(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Every window of ``x`` copied into one row: ``(n, oh, ow, kh, kw, channels)``, in a reused buffer."""
        g = self.geometry
        # Separate buffers for training and inference batches, which usually differ in size (no reallocation).
        padded = self._padded(x, "padded" if training else "padded_inference")
        cols = self._buffers.get("cols" if training else "cols_inference",
                                 (len(x), g.out_height, g.out_width, *self.kernel_size, g.channels), x.dtype)
        np.copyto(cols, g.windows(padded))
        return cols

    def _padded(self, x: np.ndarray, key: str) -> np.ndarray:
        """``x`` inside a zero border, in a reused buffer whose border is written once, as zeros (``x`` itself
        without padding)."""
        g = self.geometry
        if not g.is_padded:
            return x
        padded = self._buffers.get(key, (len(x), g.padded_height, g.padded_width, g.channels), x.dtype, fill=0)
        padded[g.interior()] = x
        return padded

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._cols is None and self._tiles is None and self._cols_transposed is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        g = self.geometry
        n = len(grad_z)
        if self.use_bias:
            self._buffers.column_sums(grad_z.reshape(-1, self.filters), out=self.grads["bias"])
        if self._tiles is not None:
            return self._winograd_backward(grad_z.reshape(n, g.out_height, g.out_width, self.filters),
                                           input_gradient)
        if self._cols_transposed is not None:
            return self._single_channel_backward(grad_z.reshape(-1, self.filters), input_gradient)
        grad_z = grad_z.reshape(-1, self.filters)
        cols = self._cols.reshape(len(grad_z), -1)
        kernel = self.params["kernel"]
        np.matmul(cols.T, grad_z, out=self.grads["kernel"].reshape(-1, self.filters))
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
        return self._col2im(grad_blocks.reshape(kh, kw, n, g.out_height, g.out_width, g.channels))

    def _single_channel_backward(self, grad_z: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        """dL/dkernel from the transposed one-channel columns; dL/dx, if asked, as one block per window offset
        (``(kh * kw, batch * oh * ow)``, in the spent columns' memory) added back by col2im."""
        g = self.geometry
        kh, kw = self.kernel_size
        columns, self._cols_transposed = self._cols_transposed[:kh * kw], None
        np.matmul(columns, grad_z, out=self.grads["kernel"].reshape(kh * kw, self.filters))
        if not input_gradient:
            return None
        kernel = self.params["kernel"].reshape(kh * kw, self.filters)
        grad_blocks = columns if columns.dtype == grad_z.dtype else np.empty(columns.shape, grad_z.dtype)
        np.matmul(kernel, grad_z.T, out=grad_blocks)
        return self._col2im(grad_blocks.reshape(kh, kw, -1, g.out_height, g.out_width, 1))

    def _col2im(self, grad_blocks: np.ndarray) -> np.ndarray:
        """dL/dx from the window blocks ``(kh, kw, n, oh, ow, channels)``: each block added onto its window."""
        g = self.geometry
        kh, kw, n = grad_blocks.shape[:3]
        grad_padded = np.zeros((n, g.padded_height, g.padded_width, g.channels), dtype=grad_blocks.dtype)
        for i in range(kh):
            for j in range(kw):
                grad_padded[g.position(i, j)] += grad_blocks[i, j]
        return grad_padded[g.interior()] if g.is_padded else grad_padded

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "initializer": self.initializer,
                "use_bias": self.use_bias}

    # -- export (see .conversion) --
    def export_settings(self):
        settings = {**window_settings(self, self.kernel_size), "activation": activation_settings(self)}
        return settings, float32_weights(self, "kernel", "bias")

    @staticmethod
    def to_onnx(builder, step):
        """ONNX's Conv on channels first, its kernel (out, in, kh, kw) from ours (kh, kw, in, out)."""
        kernel = np.ascontiguousarray(step.weights["kernel"].transpose(3, 2, 0, 1))
        inputs = [builder.input(step, channels_first=True), builder.constant(step, "kernel", kernel)]
        if "bias" in step.weights:
            inputs.append(builder.constant(step, "bias"))
        z = builder.op("Conv", inputs, step, dilations=[1, 1], **builder.window(step.settings))
        builder.output(step, builder.activation(step, z, step.settings["activation"], channels_first=True),
                       channels_first=True)
