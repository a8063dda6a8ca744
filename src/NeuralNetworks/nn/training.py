"""The training loop behind ``Sequential.fit``: epochs of shuffled batches, validation and callbacks.

One batch goes through ``Trainer.train_step`` and nowhere else: ``model.compute_gradients`` (forward, loss,
backward into ``model.flat.grads``), then ``model.apply_gradients`` (the optimizer step). An engine that must
act between the two (averaging gradients across processes, say) subclasses ``Trainer`` and overrides
``train_step``; layers and optimizers need not know.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._validation import boolean, positive_int, real_in_range
from .activations import Softmax
from .callbacks import Callback, CallbackList, EpochLogger, History, ProgressBar
from .layers import Layer
from .losses import Loss
from .weights import FlatWeights

if TYPE_CHECKING:
    from .models import Sequential

VERBOSITY = (0, 1, 2)  # fit's display: none, a progress bar, one line per epoch
INFERENCE_BATCH_SIZE = 256  # predict/evaluate batch: big enough for BLAS to be efficient, small in memory

Logs = dict[str, float]


class NonFiniteError(ValueError, FloatingPointError):
    """Numbers overflowed to infinity or NaN (a loss, a prediction): a FloatingPointError, and a ValueError for
    callers that treat every refused input alike."""

Backward = Callable[[np.ndarray], np.ndarray | None]


@dataclass(frozen=True)
class StepPlan:
    """What a training step does, decided once when the model is compiled and built (``prepare_training``)."""

    fuses_softmax: bool  # the last layer's softmax and the loss are fused: the gradient at the logits is y_hat - y
    backward: tuple[Backward, ...]  # each layer's backward call, from the top down to the lowest with weights
    gradients: tuple[np.ndarray, ...]  # what the optimizer steps from: the model's flat gradient buffer

    @classmethod
    def of(cls, layers: Sequence[Layer], loss: Loss, flat: FlatWeights) -> StepPlan:
        last = layers[-1]
        fused = (loss.fusable_with_softmax and not getattr(loss, "from_logits", False)
                 and isinstance(getattr(last, "activation", None), Softmax) and hasattr(last, "backward_preactivation"))
        # Layers below the lowest one with weights have nothing to learn, and that layer's input gradient would
        # go nowhere: skipping both saves a third of its work (PyTorch skips it too).
        lowest = next((i for i, layer in enumerate(layers) if layer.params), len(layers))
        backward: list[Backward] = []
        for layer in reversed(layers[lowest:]):
            step = layer.backward_preactivation if fused and layer is last else layer.backward
            if layer is layers[lowest] and "input_gradient" in inspect.signature(step).parameters:
                step = functools.partial(step, input_gradient=False)
            backward.append(step)
        return cls(fused, tuple(backward), (flat.grads,))


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> Logs:
    """Loss and metrics of ``model`` on prepared arrays (as ``model.prepare_data`` returns them)."""
    y_pred = model.predict(x, batch_size=batch_size, verbose=0)
    logs = {"loss": 0.0}
    size = batch_size or INFERENCE_BATCH_SIZE
    for start in range(0, len(x), size):  # batch means weighted by size: the exact mean over all samples
        stop = start + size
        logs["loss"] += model.loss(y[start:stop], y_pred[start:stop]) * len(y_pred[start:stop])
    logs["loss"] /= len(x)
    for name, metric in model.metrics:
        logs[name] = metric(y, y_pred)
    return logs


class Trainer:
    """Runs ``fit`` for one model. Shuffling, dropout and the validation split draw from ``model.rng``, so a
    seeded model trains bit-identically; batches are gathered by index, never by copying the dataset."""

    def __init__(self, model: Sequential) -> None:
        self.model = model

    def fit(self, x: object, y: object, epochs: int = 1, batch_size: int = 32,
            validation_data: tuple[object, object] | None = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[Callback] | None = None, verbose: int = 1) -> History:
        """Train for ``epochs`` passes over ``(x, y)``; see ``Sequential.fit``."""
        model = self.model
        if model.optimizer is None or model.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before model.fit()")
        epochs = positive_int("fit", "epochs", epochs)
        batch_size = positive_int("fit", "batch_size", batch_size)
        validation_split = real_in_range("fit", "validation_split", validation_split, 0.0, 1.0, high_open=True)
        shuffle = boolean("fit", "shuffle", shuffle)
        if not isinstance(verbose, numbers.Integral) or verbose not in VERBOSITY:  # True and False are 1 and 0
            raise ValueError(f"fit expects `verbose` to be 0 (silent), 1 (progress bar) or 2 (one line per epoch). "
                             f"Received: verbose={verbose!r}")
        if callbacks is not None and (not isinstance(callbacks, Sequence) or
                                      not all(isinstance(callback, Callback) for callback in callbacks)):
            raise TypeError(f"fit expects `callbacks` to be a list of Callback instances. Received: {callbacks!r:.80}")
        x, y = model.prepare_data(x, y)
        train_index: np.ndarray | int = len(x)  # all samples; permutation(n) == permutation(arange(n))
        x_val = y_val = None
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise ValueError("`validation_data` must be a tuple (x_val, y_val)")
            x_val, y_val = model.prepare_data(*validation_data, name="validation_data")
        elif validation_split:
            train_index, val_index = self._split(len(x), validation_split)
            x_val, y_val = x[val_index], y[val_index]
        samples = train_index if isinstance(train_index, int) else len(train_index)
        history = History()
        # History and the progress display come last, so they record what the user's callbacks added to the logs.
        display = [ProgressBar()] if verbose == 1 else [EpochLogger()] if verbose == 2 else []
        callback_list = CallbackList([*(callbacks or []), history, *display], model,
                                     {"epochs": epochs, "steps": -(-samples // batch_size),
                                      "batch_size": batch_size, "samples": samples})
        model.stop_training = False
        model.history = history
        model.prepare_training()
        callback_list.on_train_begin()
        try:
            with model.blas_threads(batch_size):
                for epoch in range(epochs):
                    callback_list.on_epoch_begin(epoch)
                    logs = self.train_epoch(x, y, train_index, batch_size, shuffle, callback_list)
                    if x_val is not None:
                        logs.update({f"val_{k}": v for k, v in evaluate(model, x_val, y_val).items()})
                    callback_list.on_epoch_end(epoch, logs)
                    if model.stop_training:
                        break
        finally:
            callback_list.on_train_end()
        return history

    def _split(self, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation indices (each sorted) of a shuffled split holding back ``fraction``."""
        order = self.model.rng.permutation(n)
        n_val = int(round(n * fraction))
        if n_val == 0 or n_val == n:
            raise ValueError(f"validation_split={fraction} leaves no samples for training or validation out of {n}")
        return np.sort(order[:-n_val]), np.sort(order[-n_val:])

    def train_epoch(self, x: np.ndarray, y: np.ndarray, train_index: np.ndarray | int, batch_size: int,
                    shuffle: bool, callback_list: CallbackList) -> Logs:
        """One pass over the samples ``train_index`` (an index array, or n for all) in batches; the epoch's
        sample-weighted mean loss and metrics."""
        metrics = self.model.metrics
        if shuffle:
            order = self.model.rng.permutation(train_index)
        else:
            order = np.arange(train_index) if isinstance(train_index, int) else train_index
        totals = dict.fromkeys(["loss", *(name for name, _ in metrics)], 0.0)
        seen = 0
        for batch, start in enumerate(range(0, len(order), batch_size)):
            index = np.sort(order[start:start + batch_size])
            y_batch = y[index]
            loss_value, y_pred = self.train_step(x[index], y_batch)
            if not np.isfinite(loss_value):
                raise NonFiniteError(f"The loss became {loss_value} at batch {batch}: lower the learning rate "
                                         "or scale the inputs (e.g. divide pixels by 255)")
            totals["loss"] += loss_value * len(index)
            for name, metric in metrics:
                totals[name] += metric(y_batch, y_pred) * len(index)
            seen += len(index)
            if callback_list.wants_batch_logs:
                callback_list.on_batch_end(batch, {k: v / seen for k, v in totals.items()})
        return {k: v / seen for k, v in totals.items()}

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One gradient step on one batch: the batch loss and predictions. Engines override this."""
        return self.model.train_on_batch(x, y)
