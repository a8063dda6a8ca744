"""The ceiling: an MLP training step hand-written as one fused NumPy loop, for the speed benchmark.

No layers, no callbacks, no validation: float32 throughout, every buffer allocated once, the softmax and the
cross-entropy gradient fused (``dL/dz = (softmax(z) - onehot(y)) / m``), SGD and Adam updated in place. What the
library loses against this loop is its own overhead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DTYPE = np.float32
BETA_1 = 0.9
BETA_2 = 0.999
ADAM_EPSILON = 1e-7


class FusedMLP:
    """A ReLU MLP ``sizes[0] -> ... -> sizes[-1]`` with a softmax output, trained on integer labels.

    ``train_epoch(x, y, order, batch_size)`` runs one pass over ``x[order]`` and returns the mean loss.
    """

    def __init__(self, sizes: Sequence[int], optimizer: str, learning_rate: float, seed: int = 0) -> None:
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"FusedMLP supports optimizer 'sgd' or 'adam'. Received: optimizer={optimizer!r}")
        rng = np.random.default_rng(seed)
        self.sizes = tuple(sizes)
        self.optimizer = optimizer
        self.learning_rate = float(learning_rate)
        self.kernels = [(rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(DTYPE)
                        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)]
        self.biases = [np.zeros(fan_out, DTYPE) for fan_out in self.sizes[1:]]
        self.params = [*self.kernels, *self.biases]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.scratch = [np.zeros_like(p) for p in self.params]
        self.moments = [np.zeros_like(p) for p in self.params] if optimizer == "adam" else []
        self.squares = [np.zeros_like(p) for p in self.params] if optimizer == "adam" else []
        self.step_count = 0
        self._batch_size = 0

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params))

    def _allocate(self, batch_size: int) -> None:
        """Activations, their gradients and ReLU masks for one batch size (re-allocated only when it changes)."""
        self._batch_size = batch_size
        self.x_batch = np.empty((batch_size, self.sizes[0]), DTYPE)
        self.activations = [np.empty((batch_size, units), DTYPE) for units in self.sizes[1:]]
        self.deltas = [np.empty((batch_size, units), DTYPE) for units in self.sizes[1:]]
        self.masks = [np.empty((batch_size, units), bool) for units in self.sizes[1:-1]]
        self.row_sums = np.empty((batch_size, 1), DTYPE)
        self.rows = np.arange(batch_size)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int) -> float:
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            total += self.train_step(x, y, index) * len(index)
        return total / len(order)

    def train_step(self, x: np.ndarray, y: np.ndarray, index: np.ndarray) -> float:
        m = len(index)
        if m != self._batch_size:
            self._allocate(m)
        np.take(x, index, axis=0, out=self.x_batch)
        labels = y[index]
        # forward
        inputs = self.x_batch
        last = len(self.kernels) - 1
        for layer, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            z = self.activations[layer]
            np.matmul(inputs, kernel, out=z)
            z += bias
            if layer < last:
                np.maximum(z, 0, out=z)
            inputs = z
        # fused softmax + cross-entropy: z holds the logits, becomes dL/dz in place
        logits = self.activations[-1]
        np.max(logits, axis=1, keepdims=True, out=self.row_sums)
        logits -= self.row_sums
        picked = logits[self.rows, labels]
        np.exp(logits, out=logits)
        np.sum(logits, axis=1, keepdims=True, out=self.row_sums)
        loss = float(np.mean(np.log(self.row_sums[:, 0]) - picked))
        logits /= self.row_sums
        logits[self.rows, labels] -= 1
        logits *= 1.0 / m
        # backward
        delta = logits
        for layer in range(last, -1, -1):
            below = self.x_batch if layer == 0 else self.activations[layer - 1]
            np.matmul(below.T, delta, out=self.grads[layer])
            np.sum(delta, axis=0, out=self.grads[len(self.kernels) + layer])
            if layer:
                grad_below = self.deltas[layer - 1]
                np.matmul(delta, self.kernels[layer].T, out=grad_below)
                mask = self.masks[layer - 1]
                np.greater(below, 0, out=mask)
                grad_below *= mask
                delta = grad_below
        self._update()
        return loss

    def _update(self) -> None:
        self.step_count += 1
        lr = self.learning_rate
        if self.optimizer == "sgd":
            for param, grad, scratch in zip(self.params, self.grads, self.scratch, strict=True):
                np.multiply(grad, lr, out=scratch)
                param -= scratch
            return
        t = self.step_count
        step_size = lr * math.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)  # a Python float keeps float32 math
        for param, grad, m, v, scratch in zip(self.params, self.grads, self.moments, self.squares, self.scratch,
                                              strict=True):
            m *= BETA_1
            np.multiply(grad, 1 - BETA_1, out=scratch)
            m += scratch
            v *= BETA_2
            np.multiply(grad, grad, out=scratch)
            scratch *= 1 - BETA_2
            v += scratch
            np.sqrt(v, out=scratch)
            scratch += ADAM_EPSILON
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            param -= scratch
