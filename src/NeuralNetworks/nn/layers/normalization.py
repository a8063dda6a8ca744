"""BatchNormalization over the last (channel) axis, for (batch, features) and (batch, h, w, channels) input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._validation import boolean, real_in_range
from .base import BufferCache, Layer
from .conversion import EXPORT_DTYPE, float32_weights

DEFAULT_MOMENTUM = 0.9  # of the moving statistics; see BatchNormalization
# NumPy applies a vector to an array row by row, and rows of up to 4096 values ran 1.5-2.2x slower than rows of
# 6272 or more (NumPy 2.4, one core: 0.20 against 0.10 ms for a 64x14x14x64 batch seen as rows of 64 channels).
# So the layer sees its (values, channels) arrays as rows of `k` pixels, `k * channels >= WIDE_ROW_VALUES`, with
# the per-channel vectors tiled `k` times; the tiles stay small (at most MAX_WIDE_ROW_VALUES values, else rows of
# fewer pixels).
WIDE_ROW_VALUES = 8192
MAX_WIDE_ROW_VALUES = 65536


class BatchNormalization(Layer):
    """Normalise each channel with batch statistics while training, moving statistics at inference
    (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167):

    x_hat = (x - mean) / sqrt(var + epsilon);  y = gamma * x_hat + beta.

    Training uses the mean and (biased) variance over every axis but the last and updates
    ``moving <- momentum * moving + (1 - momentum) * batch`` in ``self.state``, saved with the model.

    ``momentum`` defaults to 0.9 (PyTorch's choice), not Keras' 0.99: the moving statistics then average the last
    ~10 batches, so they are usable after a few dozen steps and keep up with weights that still change fast.
    Measured on a small BatchNorm CNN after one 60-step epoch: inference accuracy within 1 point of the
    training-mode accuracy with 0.9, 4 to 60 points below it with 0.99 (its statistics still carry 55% of the
    initial mean 0 and variance 1; they need ~500 steps, more than our short trainings have).

    Backward is exact for the training forward, through the batch statistics:
    ``dx = (gamma / sqrt(var + eps)) * (dy - mean(dy) - x_hat * mean(dy * x_hat))``, means over the batch axes.

    In a data-parallel ``fit`` (``replica_sum`` set by the engine) the statistics are those of the global batch,
    as PyTorch's SyncBatchNorm computes them: the per-channel sums and count, then the squared deviations, are
    summed over the processes in forward, and the two sums of backward likewise, so N processes train exactly
    as one process with the whole batch.
    """

    @classmethod
    def example(cls):
        return cls(), (5, 5, 3)

    def __init__(self, momentum: float = DEFAULT_MOMENTUM, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = real_in_range("BatchNormalization", "momentum", momentum, 0.0, 1.0)
        self.epsilon = real_in_range("BatchNormalization", "epsilon", epsilon, 0.0, math.inf, low_open=True)
        self.center = boolean("BatchNormalization", "center", center)
        self.scale = boolean("BatchNormalization", "scale", scale)
        self._centered: np.ndarray | None = None  # x - mean of the last training batch, as wide rows
        self._frozen_factor: np.ndarray | None = None  # a frozen layer's per-channel scale, kept for backward
        self._inverse_std: np.ndarray | None = None
        self._batch_share = 1.0  # this process's part of the values per channel in the last training batch
        self._split: tuple[int, int] = (0, 1)  # (values per channel, k) of the last batch: see `_wide`
        self._buffers = BufferCache()

    def weight_shapes(self, input_shape):
        channels = (input_shape[-1],)
        return {**({"gamma": channels} if self.scale else {}), **({"beta": channels} if self.center else {})}

    def state_shapes(self, input_shape):
        return {"moving_mean": (input_shape[-1],), "moving_variance": (input_shape[-1],)}

    def check_weight(self, key, value):
        if key == "moving_variance" and np.any(value < 0):
            raise ValueError(f"{self.name or 'BatchNormalization'}: moving_variance must hold variances >= 0. "
                             f"Received a minimum of {np.min(value)}")

    def build(self, input_shape, rng, dtype):
        output_shape = super().build(input_shape, rng, dtype)
        channels = (self.input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", channels, "ones")
        if self.center:
            self.add_weight("beta", channels, "zeros")
        self.add_weight("moving_mean", channels, "zeros", trainable=False)
        self.add_weight("moving_variance", channels, "ones", trainable=False)
        return output_shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_batch(x)
        wide, k = self._wide(x)
        dtype = x.dtype
        gamma = self.params.get("gamma")
        beta = self.params.get("beta")
        self._frozen_factor = self._centered = None
        if not training or not self.trainable:  # a frozen layer normalises as at inference (Keras' rule)
            # y = x * a + b with the per-channel a = gamma / sqrt(var + eps), b = beta - mean * a.
            factor = 1.0 / np.sqrt(self.state["moving_variance"] + dtype.type(self.epsilon))
            if gamma is not None:
                factor = factor * gamma
            shift = -self.state["moving_mean"] * factor
            if beta is not None:
                shift = shift + beta
            if training:  # frozen: backward scales the gradient by the same per-channel factor
                self._frozen_factor = factor.astype(dtype)
            y = np.multiply(wide, _tiled(factor, k, dtype))
            return np.add(y, _tiled(shift, k, dtype), out=y).reshape(x.shape)
        count = len(wide) * k  # values per channel
        if self.replica_sum is not None:
            mean, centered, variance = self._global_statistics(wide, k)
        else:
            self._check_count(count, f"an array of shape {x.shape}")
            mean = self._channel_sums(wide, k) / dtype.type(count)
            centered = np.subtract(wide, _tiled(mean, k, dtype))
            variance = self._channel_dots(centered, centered, k) / dtype.type(count)
        inverse_std = 1.0 / np.sqrt(variance + dtype.type(self.epsilon))
        self._centered, self._inverse_std = centered, inverse_std
        momentum = self.momentum
        for key, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving *= momentum
            moving += (1 - momentum) * batch_value.astype(moving.dtype)
        # y = x_hat * gamma + beta, x_hat = centered * inverse_std: two passes over the batch
        y = np.multiply(centered, _tiled(inverse_std if gamma is None else inverse_std * gamma, k, dtype))
        if beta is not None:
            y += _tiled(beta, k, dtype)
        return y.reshape(x.shape)

    def _wide(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """``x`` as rows of ``k`` pixels' channels, ``(values per channel / k, k * channels)``, and ``k``: the
        smallest divisor of the values per channel making rows of ``WIDE_ROW_VALUES`` (kept per batch size)."""
        channels = self.input_shape[-1]
        count = x.size // channels
        if self._split[0] != count:
            self._split = (count, wide_row_pixels(count, channels))
        k = self._split[1]
        return x.reshape(count // k, k * channels), k

    def _channel_sums(self, wide: np.ndarray, k: int) -> np.ndarray:
        """Per-channel sums of wide rows: the column sums (one product), then the ``k`` pixels' sums added."""
        sums = self._buffers.column_sums(wide)
        return sums if k == 1 else sums.reshape(k, -1).sum(axis=0)

    @staticmethod
    def _channel_dots(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
        """Per-channel sums of ``a * b`` over wide rows, without the product array."""
        dots = np.einsum("ij,ij->j", a, b)
        return dots if k == 1 else dots.reshape(k, -1).sum(axis=0)

    def _check_count(self, count: float, received: str) -> None:
        if count < 2:
            raise ValueError(f"{self.name or 'BatchNormalization'} needs at least 2 values per channel to "
                             f"compute batch statistics in training. Received {received}")

    def _global_statistics(self, wide: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, centered values and variance over the batches of every process, in the same two passes as one
        process: the per-channel sums and the count, then the squared deviations from the global mean."""
        channels = wide.shape[1] // k
        here = len(wide) * k
        sums = np.empty(channels + 1)  # float64: the count stays exact, the sums accurate
        sums[:-1] = self._channel_sums(wide, k)
        sums[-1] = here
        count = self.replica_sum(sums)[-1]
        self._check_count(count, f"{int(count)} values per channel over all processes")
        mean = (sums[:-1] / count).astype(wide.dtype)
        centered = np.subtract(wide, _tiled(mean, k, wide.dtype))
        squares = self._channel_dots(centered, centered, k).astype(np.float64)
        variance = (self.replica_sum(squares) / count).astype(wide.dtype)
        self._batch_share = here / count
        return mean, centered, variance

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._frozen_factor is not None:
            grad, k = self._wide(grad_output)
            return np.multiply(grad, _tiled(self._frozen_factor, k, grad.dtype)).reshape(grad_output.shape)
        if self._centered is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        centered, inverse_std = self._centered, self._inverse_std
        grad, k = self._wide(grad_output)
        dtype = grad.dtype
        grad_sum = self._channel_sums(grad, k)
        grad_dot_x_hat = self._channel_dots(grad, centered, k) * inverse_std  # sum(dy * x_hat)
        if "beta" in self.params:
            self.grads["beta"][...] = grad_sum
        if "gamma" in self.params:
            self.grads["gamma"][...] = grad_dot_x_hat
        if not input_gradient:
            return None
        count = len(centered) * k
        if self.replica_sum is not None:  # the global batch's sums, each process's part weighted by its share
            both = np.concatenate([grad_sum, grad_dot_x_hat]).astype(np.float64) * self._batch_share
            self.replica_sum(both)
            grad_sum, grad_dot_x_hat = (both[:len(grad_sum)].astype(dtype), both[len(grad_sum):].astype(dtype))
        factor = inverse_std if "gamma" not in self.params else inverse_std * self.params["gamma"]
        # dx = factor * (dy - mean(dy) - x_hat * mean(dy * x_hat)), x_hat = centered * inverse_std: four passes
        grad_input = np.multiply(centered, _tiled(inverse_std * (-grad_dot_x_hat / count), k, dtype))
        grad_input += grad
        grad_input -= _tiled(grad_sum / count, k, dtype)
        grad_input *= _tiled(factor, k, dtype)
        return grad_input.reshape(grad_output.shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale}

    # -- export (see .conversion) --
    def export_settings(self):
        """Inference-mode statistics; a layer without ``scale``/``center`` gets gamma = 1 / beta = 0."""
        weights = float32_weights(self, "gamma", "beta", "moving_mean", "moving_variance")
        channels = self.input_shape[-1]
        weights.setdefault("gamma", np.ones(channels, EXPORT_DTYPE))
        weights.setdefault("beta", np.zeros(channels, EXPORT_DTYPE))
        return {"epsilon": float(self.epsilon)}, weights

    @staticmethod
    def to_onnx(builder, step):
        inputs = [builder.input(step, channels_first=True)]  # ONNX normalises axis 1
        inputs += [builder.constant(step, key) for key in ("gamma", "beta", "moving_mean", "moving_variance")]
        y = builder.op("BatchNormalization", inputs, step, epsilon=step.settings["epsilon"])
        builder.output(step, y, channels_first=True)


def wide_row_pixels(count: int, channels: int) -> int:
    """k for ``count`` pixels of ``channels`` values: the smallest divisor of ``count`` with ``k * channels >=
    WIDE_ROW_VALUES``, else the largest with ``k * channels <= MAX_WIDE_ROW_VALUES`` (1 at worst)."""
    largest = max(1, min(count, MAX_WIDE_ROW_VALUES // channels))
    for k in range(min(-(-WIDE_ROW_VALUES // channels), largest), largest + 1):
        if count % k == 0:
            return k
    return next(k for k in range(largest, 0, -1) if count % k == 0)


def _tiled(vector: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    """A per-channel vector repeated for ``k`` pixels: the row of a wide view."""
    vector = np.asarray(vector, dtype=dtype)
    return vector if k == 1 else np.tile(vector, k)
