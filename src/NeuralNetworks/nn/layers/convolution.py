"""2-D convolution on channels-last (NHWC) images, vectorised as im2col + one matrix product."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..._validation import boolean, positive_int
from .. import activations, initializers
from . import winograd, winograd4
from .base import ActivatedLayer, BufferCache
from .conversion import activation_settings, float32_weights, window_settings
from .windows import WindowGeometry, as_padding, as_pair
from .winograd_steps import WinogradSteps

# Values of im2col columns a training or inference chunk holds (2 MiB of float32): see Conv2D._direct_chunk.
DIRECT_CHUNK_VALUES = 1 << 19


class Conv2D(WinogradSteps, ActivatedLayer):
    """2-D convolution (cross-correlation, as in Keras): ``y = activation(conv(x, kernel) + bias)``.

    Shapes: x ``(batch, height, width, channels)``, kernel ``(kh, kw, channels, filters)``, bias ``(filters,)``,
    y ``(batch, out_height, out_width, filters)``.

    Forward: every window is copied into one row of ``cols`` ``(batch * oh * ow, kh * kw * channels)`` (im2col),
    then ``z = cols @ kernel`` is a single matrix product. Backward: ``dL/dkernel = cols^T dz`` and
    ``dL/dcols = dz kernel^T`` (one batched product), whose blocks are added back onto their windows (col2im)
    in a loop over the ``kh * kw`` window offsets only.

    A stride-1 3x3 convolution of 32 channels or more, on a batch of 1024 output pixels or more, runs as
    Winograd instead (``winograd.applies``): F(4x4, 3x3) (``winograd4``; up to 4x fewer multiply-adds) or
    F(2x2, 3x3) (``winograd``; up to 2.25x fewer), whichever needs fewer products on the map, forward and
    backward, equal to the direct form up to rounding (``WinogradSteps``). Both ways work a chunk of images at a time,
    so that each chunk's operands stay in the core's cache. Inference on one channel (grey images) builds the
    columns transposed (``_single_channel_product``).
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
        self._padded_input: np.ndarray | None = None  # the (padded) input of a direct training forward
        self._cols_transposed: np.ndarray | None = None  # the one-channel columns of a training forward
        self._tiles: np.ndarray | None = None  # the transformed input tiles of a Winograd training forward
        self._winograd: ModuleType | None = None  # ... and the Winograd module that made them

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
        if not winograd.applies(self.kernel_size, self.strides, g.channels):
            return direct  # (F(2x2)'s count bounds F(4x4)'s, whose tiles hold 36 values per 16 pixels, not 16 per 4)
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
        self._padded_input = self._tiles = self._cols_transposed = self._winograd = None
        algorithm = self._winograd_algorithm(n)
        if algorithm is not None:
            z = self._winograd_forward(x, training, algorithm)
        elif g.channels == 1:
            z = self._single_channel_product(x, training)  # the bias included
            return z.reshape(n, g.out_height, g.out_width, self.filters)
        else:
            z = self._direct_product(x, training)
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

    def _winograd_algorithm(self, batch: int) -> ModuleType | None:
        """The Winograd module a batch of this size runs through, whichever of ``winograd`` (F(2x2, 3x3)) and
        ``winograd4`` (F(4x4, 3x3)) needs fewer products on this map (F(2x2) on a tie: it rounds less), or
        None for im2col (when Winograd does not apply, or would not need fewer products than im2col)."""
        g = self.geometry
        if not (winograd.applies(self.kernel_size, self.strides, g.channels)
                and winograd.worth_it(batch, g.out_height, g.out_width)):
            return None
        algorithm = min((winograd, winograd4), key=lambda module: module.products(g.out_height, g.out_width))
        direct = self.kernel_size[0] * self.kernel_size[1] * g.out_height * g.out_width
        return algorithm if algorithm.products(g.out_height, g.out_width) < direct else None

    def _direct_chunk(self, batch: int) -> int:
        """Images whose columns im2col builds and multiplies at once: with a chunk's columns in the core's cache
        the products run 1.3-1.5x faster than over the whole batch's (measured on one core, 65-80 -> 94-104
        GFLOP/s), and training keeps only the padded input, not the columns."""
        g = self.geometry
        values = g.out_height * g.out_width * self.kernel_size[0] * self.kernel_size[1] * g.channels
        return max(1, min(batch, DIRECT_CHUNK_VALUES // values))

    def _direct_product(self, x: np.ndarray, training: bool) -> np.ndarray:
        """z = cols @ kernel (no bias), a chunk of images at a time; keeps the padded input for backward."""
        g = self.geometry
        n = len(x)
        pixels = g.out_height * g.out_width
        padded = self._padded(x, "padded" if training else "padded_inference")
        kernel = self.params["kernel"].reshape(-1, self.filters)
        step = self._direct_chunk(n)
        z = np.empty((n * pixels, self.filters), x.dtype)
        for start in range(0, n, step):
            stop = min(n, start + step)
            cols = self._im2col(padded[start:stop], step, "cols" if training else "cols_inference")
            np.matmul(cols.reshape((stop - start) * pixels, -1), kernel, out=z[start * pixels:stop * pixels])
        self._padded_input = padded if training else None
        return z

    def _im2col(self, padded: np.ndarray, step: int, key: str) -> np.ndarray:
        """Every window of ``padded`` copied into one row: ``(n, oh, ow, kh, kw, channels)``, in a buffer of
        ``step`` images reused from chunk to chunk and batch to batch."""
        g = self.geometry
        cols = self._buffers.get(key, (step, g.out_height, g.out_width, *self.kernel_size, g.channels),
                                 padded.dtype)[:len(padded)]
        np.copyto(cols, g.windows(padded))
        return cols

    def _padded(self, x: np.ndarray, key: str) -> np.ndarray:
        """``x`` inside a zero border, in a reused buffer whose border is written once, as zeros (``x`` itself
        without padding)."""
        g = self.geometry
        if not g.is_padded:
            return x
        padded = self._buffers.get(key, g.padded_shape(len(x)), x.dtype, fill=0)
        padded[g.interior()] = x
        return padded

    def backward_preactivation(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._padded_input is None and self._tiles is None and self._cols_transposed is None:
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
        return self._direct_backward(grad_z.reshape(-1, self.filters), input_gradient)

    def _direct_backward(self, grad_z: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        """dL/dkernel = cols^T dz and dL/dcols = dz kernel^T, a chunk of images at a time: each chunk's columns
        are built again from the kept padded input, and its window gradients added back by col2im."""
        g = self.geometry
        padded, self._padded_input = self._padded_input, None  # one backward per training forward
        n = len(padded)
        pixels = g.out_height * g.out_width
        kh, kw = self.kernel_size
        step = self._direct_chunk(n)
        grad_kernel = self.grads["kernel"].reshape(-1, self.filters)
        part = np.empty_like(grad_kernel)
        if input_gradient:
            # dL/dcols as one (batched) product, laid out (kh * kw, pixels, channels): each window offset's
            # block is then contiguous, so col2im adds whole blocks (3x faster than strided columns of cols).
            kernel_stack = np.ascontiguousarray(
                self.params["kernel"].reshape(kh * kw, g.channels, self.filters).transpose(0, 2, 1))
            blocks = self._buffers.get("grad_blocks", (kh * kw, step * pixels, g.channels), grad_z.dtype)
            grad_padded = np.zeros(g.padded_shape(n), grad_z.dtype)
        for start in range(0, n, step):
            stop = min(n, start + step)
            cols = self._im2col(padded[start:stop], step, "cols").reshape((stop - start) * pixels, -1)
            grad = grad_z[start * pixels:stop * pixels]
            np.matmul(cols.T, grad, out=grad_kernel if start == 0 else part)
            if start:
                grad_kernel += part
            if input_gradient:
                chunk_blocks = blocks[:, :len(grad)]
                np.matmul(grad, kernel_stack, out=chunk_blocks)
                self._col2im(chunk_blocks.reshape(kh, kw, stop - start, g.out_height, g.out_width, g.channels),
                             grad_padded[start:stop])
        if not input_gradient:
            return None
        return g.unpadded(grad_padded)

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
        grad_padded = np.zeros(g.padded_shape(len(grad_z) // (g.out_height * g.out_width)), grad_z.dtype)
        self._col2im(grad_blocks.reshape(kh, kw, -1, g.out_height, g.out_width, 1), grad_padded)
        return g.unpadded(grad_padded)

    def _col2im(self, grad_blocks: np.ndarray, grad_padded: np.ndarray) -> None:
        """Add the window blocks ``(kh, kw, n, oh, ow, channels)`` onto their windows of ``grad_padded``."""
        g = self.geometry
        kh, kw = grad_blocks.shape[:2]
        for i in range(kh):
            for j in range(kw):
                grad_padded[g.position(i, j)] += grad_blocks[i, j]

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
