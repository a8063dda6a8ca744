"""BatchNormalization over the last (channel) axis, for (batch, features) and (batch, h, w, channels) input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._validation import boolean, real_in_range
from .base import BufferCache, Layer
from .conversion import EXPORT_DTYPE, float32_weights

DEFAULT_MOMENTUM = 0.9  # of the moving statistics; see BatchNormalization


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
        self._x_hat: np.ndarray | None = None
        self._frozen_factor: np.ndarray | None = None  # a frozen layer's per-channel scale, kept for backward
        self._inverse_std: np.ndarray | None = None
        self._batch_share = 1.0  # this process's part of the values per channel in the last training batch
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
        flat = x.reshape(-1, self.input_shape[-1])  # (values per channel, channels)
        gamma = self.params.get("gamma")
        beta = self.params.get("beta")
        self._frozen_factor = None
        if not training or not self.trainable:  # a frozen layer normalises as at inference (Keras' rule)
            # y = x * a + b with the per-channel a = gamma / sqrt(var + eps), b = beta - mean * a.
            factor = 1.0 / np.sqrt(self.state["moving_variance"] + x.dtype.type(self.epsilon))
            if gamma is not None:
                factor = factor * gamma
            shift = -self.state["moving_mean"] * factor
            if beta is not None:
                shift = shift + beta
            self._x_hat = None
            if training:  # frozen: backward scales the gradient by the same per-channel factor
                self._frozen_factor = factor.astype(x.dtype)
            return (flat * factor.astype(x.dtype) + shift.astype(x.dtype)).reshape(x.shape)
        if self.replica_sum is not None:
            mean, centered, variance = self._global_statistics(flat)
        else:
            self._check_count(len(flat), f"an array of shape {x.shape}")
            mean = self._buffers.column_sums(flat) / flat.dtype.type(len(flat))
            centered = flat - mean
            variance = np.einsum("ij,ij->j", centered, centered) / flat.dtype.type(len(flat))
        inverse_std = 1.0 / np.sqrt(variance + x.dtype.type(self.epsilon))
        x_hat = centered
        x_hat *= inverse_std
        self._x_hat, self._inverse_std = x_hat, inverse_std
        momentum = self.momentum
        for key, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving *= momentum
            moving += (1 - momentum) * batch_value.astype(moving.dtype)
        y = x_hat * gamma if gamma is not None else x_hat.copy()
        if beta is not None:
            y += beta
        return y.reshape(x.shape)

    def _check_count(self, count: float, received: str) -> None:
        if count < 2:
            raise ValueError(f"{self.name or 'BatchNormalization'} needs at least 2 values per channel to "
                             f"compute batch statistics in training. Received {received}")

    def _global_statistics(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, centered values and variance over the batches of every process, in the same two passes as one
        process: the per-channel sums and the count, then the squared deviations from the global mean."""
        sums = np.empty(flat.shape[1] + 1)  # float64: the count stays exact, the sums accurate
        sums[:-1] = self._buffers.column_sums(flat)
        sums[-1] = len(flat)
        count = self.replica_sum(sums)[-1]
        self._check_count(count, f"{int(count)} values per channel over all processes")
        mean = (sums[:-1] / count).astype(flat.dtype)
        centered = flat - mean
        squares = np.einsum("ij,ij->j", centered, centered).astype(np.float64)
        variance = (self.replica_sum(squares) / count).astype(flat.dtype)
        self._batch_share = len(flat) / count
        return mean, centered, variance

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._frozen_factor is not None:
            factor = self._frozen_factor
            return (grad_output.reshape(-1, len(factor)) * factor).reshape(grad_output.shape)
        if self._x_hat is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward(training=True) first")
        x_hat = self._x_hat
        grad = grad_output.reshape(x_hat.shape)
        grad_sum = self._buffers.column_sums(grad)
        grad_dot_x_hat = np.einsum("ij,ij->j", grad, x_hat)
        if "beta" in self.params:
            self.grads["beta"][...] = grad_sum
        if "gamma" in self.params:
            self.grads["gamma"][...] = grad_dot_x_hat
        if not input_gradient:
            return None
        count = len(x_hat)
        if self.replica_sum is not None:  # the global batch's sums, each process's part weighted by its share
            both = np.concatenate([grad_sum, grad_dot_x_hat]).astype(np.float64) * self._batch_share
            self.replica_sum(both)
            grad_sum, grad_dot_x_hat = (both[:len(grad_sum)].astype(grad.dtype),
                                        both[len(grad_sum):].astype(grad.dtype))
        factor = self._inverse_std
        if "gamma" in self.params:
            factor = factor * self.params["gamma"]
        grad_input = x_hat * (-grad_dot_x_hat / count)
        grad_input += grad
        grad_input -= grad_sum / count
        grad_input *= factor
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
