"""Sequential: a stack of layers with Keras' add / compile / fit / evaluate / predict / save, and ``load``."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, saving
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from ._inputs import as_samples, as_targets
from ._threads import blas_controller, multiply_adds_per_sample, wants_one_thread
from ._validation import positive_int, real_in_range
from .layers import ActivatedLayer, Dense, Layer

INFERENCE_BATCH_SIZE = 256  # predict/evaluate batch: big enough for BLAS to be efficient, small in memory
SUPPORTED_DTYPES = ("float32", "float64")

Labels = dict[int, str]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _as_labels(labels: Labels | Sequence[str] | None) -> Labels | None:
    if labels is None:
        return None
    items = labels.items() if isinstance(labels, dict) else enumerate(labels)
    return {int(index): str(label) for index, label in items}


class Sequential:
    """A linear stack of layers.

    >>> model = Sequential(seed=0)
    >>> model.add(layers.Dense(units=3, activation="tanh", input_shape=(2,)))
    >>> model.add(layers.Dense(units=1, activation="tanh"))
    >>> model.compile(optimizer=optimizers.SGD(0.1), loss=losses.MeanSquaredError())

    ``seed`` fixes initial weights, shuffling and dropout, so two runs with the same seed are bit-identical.
    """

    def __init__(self, layers: Iterable[Layer] | None = None, *, name: str = "sequential",
                 seed: int | None = None, dtype: str = "float32") -> None:
        if str(np.dtype(dtype)) not in SUPPORTED_DTYPES:
            raise ValueError(f"Sequential supports dtype float32 or float64. Received: dtype={dtype!r}")
        self.name = name
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.labels: Labels | None = None
        self.preprocessing: str | None = None  # how raw images become inputs ("quickdraw", "mnist"), if known
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics: list[tuple[str, metrics_module.Metric]] = []
        self.stop_training = False
        self.history: callbacks_module.History | None = None
        self._name_counts: dict[str, int] = {}
        self._blas: object | None = None  # threadpoolctl controller, made on first need (it costs ~0.4 ms)
        self._product_per_sample: int | None = None  # multiply-adds of the largest product; reset by add/build
        for layer in layers or ():
            self.add(layer)

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], activation: str = "relu", output_activation: str = "linear",
                   **kwargs: Any) -> Sequential:
        """A plain MLP from layer sizes: ``from_sizes((2, 7, 7, 3, 1))`` is 2 inputs, three hidden, 1 output."""
        if len(sizes) < 2:
            raise ValueError(f"from_sizes needs at least an input and an output size. Received: sizes={sizes!r}")
        model = cls(**kwargs)
        model.add(Dense(sizes[1], activation=activation if len(sizes) > 2 else output_activation,
                        input_shape=(positive_int("from_sizes", "sizes[0]", sizes[0]),)))
        for position, units in enumerate(sizes[2:], start=2):
            is_last = position == len(sizes) - 1
            model.add(Dense(units, activation=output_activation if is_last else activation))
        return model

    # -- building -----------------------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer, building it now if the incoming shape is known, so shape errors surface here."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer. Received: {layer!r}")
        if layer.built:
            raise ValueError(f"Layer {layer.name!r} already belongs to a model; create a new layer instead")
        if layer.name is None:
            base = _snake_case(type(layer).__name__)
            self._name_counts[base] = self._name_counts.get(base, 0) + 1
            layer.name = f"{base}_{self._name_counts[base]}"
        elif any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"The model already has a layer named {layer.name!r}; layer names must be unique")
        if self.layers:
            previous = self.layers[-1]
            if previous.built:
                self._build_layer(layer, previous.output_shape, after=previous)
        elif layer.input_shape is not None:
            self._build_layer(layer, layer.input_shape, after=None)
        self.layers.append(layer)
        self._product_per_sample = None

    def _build_layer(self, layer: Layer, input_shape: tuple[int, ...], after: Layer | None) -> None:
        try:
            layer.build(tuple(input_shape), self.rng, self.dtype)
        except ValueError as error:
            where = f"after {after.name} (output shape {after.output_shape})" if after else \
                f"with input shape {tuple(input_shape)}"
            raise ValueError(f"Cannot add {layer.name} {where}: {error}") from None

    def build(self, input_shape: Sequence[int]) -> None:
        """Build every layer for samples of ``input_shape`` (batch axis excluded)."""
        if not self.layers:
            raise ValueError("The model has no layers; add some before building it")
        shape: tuple[int, ...] = tuple(input_shape)
        previous: Layer | None = None
        for layer in self.layers:
            if not layer.built:
                self._build_layer(layer, shape, after=previous)
            shape, previous = layer.output_shape, layer
        self._product_per_sample = None

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.layers[-1].output_shape if self.built else None

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print each layer's name and type, output shape and parameter count, then the totals."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            shape = "?" if layer.output_shape is None else str((None, *layer.output_shape))
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"))
        widths = [max(len(row[i]) for row in rows) + 2 for i in range(3)]
        rule = "-" * sum(widths)
        lines = [f'Model: "{self.name}"', rule]
        for index, row in enumerate(rows):
            lines.append("".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            lines.append("=" * sum(widths) if index == 0 else rule)
        non_trainable = sum(a.size for layer in self.layers for a in layer.state.values())
        lines += [f"Total params: {self.count_params() + non_trainable:,}",
                  f"Trainable params: {self.count_params():,}",
                  f"Non-trainable params: {non_trainable:,}"]
        if self.labels:
            lines.append(f"Labels: {', '.join(self.labels[i] for i in sorted(self.labels))}")
        print_fn("\n".join(lines))

    # -- training -----------------------------------------------------------------------------------------
    def compile(self, optimizer: str | optimizers_module.Optimizer = "adam",
                loss: str | losses_module.Loss = "categorical_crossentropy",
                metrics: Sequence[str | metrics_module.Metric] | None = None) -> None:
        """Choose the optimizer, the loss and the metrics reported during training."""
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self.metrics = [metrics_module.get(m) for m in (metrics or [])]

    def _fused_softmax(self) -> bool:
        """True when the last layer's softmax and the loss are fused (gradient at the logits: y_hat - y)."""
        last = self.layers[-1]
        return (self.loss.fusable_with_softmax and not getattr(self.loss, "from_logits", False)
                and isinstance(getattr(last, "activation", None), activations.Softmax)
                and hasattr(last, "backward_preactivation"))

    def _require_compiled(self, action: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"Call model.compile(optimizer=..., loss=...) before model.{action}()")

    def _prepare(self, x: object, y: object | None, name: str = "x") -> tuple[np.ndarray, np.ndarray | None]:
        if not self.layers:
            raise ValueError("The model has no layers; add some first")
        x = as_samples(x, self.input_shape, name)
        if not self.built:
            self.build(x.shape[1:])
        if y is None:
            return x, None
        return x, as_targets(y, self.loss, self.output_shape, len(x), self.dtype,
                             name="y" if name == "x" else f"{name} labels")

    def _blas_threads(self, batch_size: int) -> contextlib.AbstractContextManager:
        """One BLAS thread while this batch size's products are small (see ``_threads``)."""
        if self._product_per_sample is None:
            self._product_per_sample = multiply_adds_per_sample(self.layers)
        if not wants_one_thread(batch_size * self._product_per_sample):
            return contextlib.nullcontext()
        if self._blas is None:
            self._blas = blas_controller()
        return contextlib.nullcontext() if self._blas is None else self._blas.limit(limits=1, user_api="blas")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run every layer on a batch already in the model's dtype."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Backpropagate the loss gradient through every layer, writing each layer's grads."""
        # Layers below the first one with weights have nothing to learn, and that layer's input gradient would
        # go nowhere: skipping both saves a third of the first layer's work (PyTorch skips it too).
        first = next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        last = len(self.layers) - 1
        if self._fused_softmax():
            grad = self.layers[-1].backward_preactivation(self.loss.logits_gradient(y_true, y_pred),
                                                          input_gradient=last > first)
            last -= 1
        else:
            grad = self.loss.gradient(y_true, y_pred)
        for index in range(last, first - 1, -1):
            layer = self.layers[index]
            if index == first and isinstance(layer, ActivatedLayer):
                layer.backward(grad, input_gradient=False)
            else:
                grad = layer.backward(grad)

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One gradient step on one batch; returns the batch loss and the predictions."""
        y_pred = self.forward(np.asarray(x, dtype=self.dtype), training=True)
        loss_value = self.loss(y, y_pred)
        self.backward(y, y_pred)
        self.optimizer.apply(*self._parameters_and_gradients())
        return loss_value, y_pred

    def _parameters_and_gradients(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        params, grads = {}, {}
        for layer in self.layers:
            for key, value in layer.params.items():
                params[f"{layer.name}/{key}"] = value
                grads[f"{layer.name}/{key}"] = layer.grads[key]
        return params, grads

    def fit(self, x: object, y: object, epochs: int = 1, batch_size: int = 32,
            validation_data: tuple[object, object] | None = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[callbacks_module.Callback] | None = None,
            verbose: int = 1) -> callbacks_module.History:
        """Train for ``epochs`` passes over ``(x, y)`` in batches; return the History of epoch logs.

        ``validation_split`` holds back that fraction of the samples, chosen after shuffling (so class-sorted
        data still gives a validation set of every class); ``validation_data`` takes precedence.
        """
        self._require_compiled("fit")
        epochs = positive_int("fit", "epochs", epochs)
        batch_size = positive_int("fit", "batch_size", batch_size)
        validation_split = real_in_range("fit", "validation_split", validation_split, 0.0, 1.0, high_open=True)
        x, y = self._prepare(x, y)
        train_index: np.ndarray | int = len(x)  # all samples; permutation(n) == permutation(arange(n))
        x_val = y_val = None
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise ValueError("`validation_data` must be a tuple (x_val, y_val)")
            x_val, y_val = self._prepare(*validation_data, name="validation_data")
        elif validation_split:
            order = self.rng.permutation(len(x))
            n_val = int(round(len(x) * validation_split))
            if n_val == 0 or n_val == len(x):
                raise ValueError(f"validation_split={validation_split} leaves no samples for training or "
                                 f"validation out of {len(x)}")
            train_index, val_index = np.sort(order[:-n_val]), np.sort(order[-n_val:])
            x_val, y_val = x[val_index], y[val_index]
        samples = train_index if isinstance(train_index, int) else len(train_index)
        steps = -(-samples // batch_size)
        history = callbacks_module.History()
        # History and the progress display come last, so they record what the user's callbacks added to the logs.
        all_callbacks = [*(callbacks or []), history]
        if verbose == 1:
            all_callbacks.append(callbacks_module.ProgressBar())
        elif verbose == 2:
            all_callbacks.append(callbacks_module.EpochLogger())
        params = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": samples}
        for callback in all_callbacks:
            callback.set_model(self, params)
        self.stop_training = False
        self.history = history
        for callback in all_callbacks:
            callback.on_train_begin()
        try:
            with self._blas_threads(batch_size):
                for epoch in range(epochs):
                    for callback in all_callbacks:
                        callback.on_epoch_begin(epoch)
                    logs = self._train_epoch(x, y, train_index, batch_size, shuffle, all_callbacks)
                    if x_val is not None:
                        logs.update({f"val_{k}": v for k, v in self._evaluate_arrays(x_val, y_val).items()})
                    for callback in all_callbacks:
                        callback.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
        finally:
            for callback in all_callbacks:
                callback.on_train_end()
        return history

    def _train_epoch(self, x, y, train_index, batch_size, shuffle, all_callbacks) -> dict[str, float]:
        if shuffle:
            order = self.rng.permutation(train_index)
        else:
            order = np.arange(train_index) if isinstance(train_index, int) else train_index
        totals = dict.fromkeys(["loss", *(name for name, _ in self.metrics)], 0.0)
        seen = 0
        for batch, start in enumerate(range(0, len(order), batch_size)):
            index = np.sort(order[start:start + batch_size])
            y_batch = y[index]
            loss_value, y_pred = self.train_on_batch(x[index], y_batch)
            if not np.isfinite(loss_value):
                raise FloatingPointError(f"The loss became {loss_value} at batch {batch}: lower the learning rate "
                                         "or scale the inputs (e.g. divide pixels by 255)")
            totals["loss"] += loss_value * len(index)
            for name, metric in self.metrics:
                totals[name] += metric(y_batch, y_pred) * len(index)
            seen += len(index)
            batch_logs = {k: v / seen for k, v in totals.items()}
            for callback in all_callbacks:
                callback.on_batch_end(batch, batch_logs)
        return {k: v / seen for k, v in totals.items()}

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> dict[str, float]:
        y_pred = self.predict(x, batch_size=batch_size, verbose=0)
        logs = {"loss": 0.0}
        size = batch_size or INFERENCE_BATCH_SIZE
        for start in range(0, len(x), size):  # batch means weighted by size: the exact mean over all samples
            stop = start + size
            logs["loss"] += self.loss(y[start:stop], y_pred[start:stop]) * len(y_pred[start:stop])
        logs["loss"] /= len(x)
        for name, metric in self.metrics:
            logs[name] = metric(y, y_pred)
        return logs

    def evaluate(self, x: object, y: object, batch_size: int | None = None, return_dict: bool = False,
                 verbose: int = 0) -> float | list[float] | dict[str, float]:
        """Loss and metrics on ``(x, y)``: a float (no metrics), ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        x, y = self._prepare(x, y)
        logs = self._evaluate_arrays(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x: object, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Model outputs for every sample of ``x``, computed in batches; caches nothing."""
        x, _ = self._prepare(x, None)
        size = batch_size or INFERENCE_BATCH_SIZE
        if len(x) <= size:  # one batch (one image, say): no output buffer to fill
            with self._blas_threads(len(x)):
                y = self.forward(np.asarray(x, dtype=self.dtype))
            return y.copy()  # a layer may hand back one of its reused buffers: the caller gets its own array
        output = np.empty((len(x), *self.output_shape), dtype=self.dtype)
        with self._blas_threads(size):
            for start in range(0, len(x), size):
                output[start:start + size] = self.forward(np.asarray(x[start:start + size], dtype=self.dtype))
        return output

    def __call__(self, data: object) -> tuple[str | int, dict[str | int, float]] | list:
        """Classify one sample: ``(label, {label: score, ...})`` sorted by score; a batch gives a list of those."""
        if not self.built:
            raise RuntimeError("The model is not built yet: give the first layer an input_shape or fit it first")
        array = np.asarray(data)
        single = array.shape == self.input_shape or array.shape + (1,) == self.input_shape
        channel_free = self.input_shape[:-1] if len(self.input_shape) > 1 and self.input_shape[-1] == 1 else None
        if not single and (array.ndim == 0 or array.shape[1:] not in (self.input_shape, channel_free)):
            raise ValueError(
                f"model(data=...) expects one sample of shape {self.input_shape} or a batch of shape "
                f"(n, {', '.join(map(str, self.input_shape))}). Received an array of shape {array.shape}"
            )
        scores = self.predict(array[np.newaxis] if single else array)
        results = [self._label_scores(row) for row in scores.reshape(len(scores), -1)]
        return results[0] if single else results

    def _label_scores(self, row: np.ndarray) -> tuple[str | int, dict[str | int, float]]:
        names = self.labels or {}
        order = np.argsort(-row, kind="stable")
        scores = {names.get(int(i), int(i)): float(row[i]) for i in order}
        return names.get(int(order[0]), int(order[0])), scores

    def inspect(self, x: object, y: object | None = None) -> list:
        """Per layer: output shape, parameter count, activations on ``x`` and (given ``y``) gradients."""
        from .inspection import inspect

        return inspect(self, x, y)

    # -- weights and files --------------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, keyed "layer/name"."""
        return {f"{layer.name}/{key}": value.copy() for layer in self.layers
                for key, value in (*layer.params.items(), *layer.state.items())}

    def set_weights(self, weights: dict[str, np.ndarray], source: str = "set_weights") -> None:
        """Copy arrays into the model's parameters and state; every key and shape must match exactly."""
        targets = {f"{layer.name}/{key}": value for layer in self.layers
                   for key, value in (*layer.params.items(), *layer.state.items())}
        missing, unexpected = sorted(set(targets) - set(weights)), sorted(set(weights) - set(targets))
        if missing or unexpected:
            raise ValueError(f"{source}: weights do not match the model (missing: {missing or 'none'}; "
                             f"unexpected: {unexpected or 'none'})")
        for key, target in targets.items():
            value = np.asarray(weights[key])
            if value.shape != target.shape:
                raise ValueError(f"{source}: shape mismatch for {key}: model expects {target.shape}, "
                                 f"got {value.shape}")
            if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
                raise ValueError(f"{source}: {key} must hold finite floating-point values")
            target[...] = value

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name, "dtype": str(self.dtype), "seed": self.seed,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }

    def save(self, model_dir: str | os.PathLike, labels: Labels | Sequence[str] | None = None,
             include_optimizer: bool = True, preprocessing: str | None = None) -> Path:
        """Write the model (architecture, weights, labels, compile settings) to one file, atomically.

        ``model_dir`` may be a file path (".npz" is appended if missing) or an existing folder, which then
        holds ``model.npz``. ``preprocessing`` names how raw drawings become inputs ("quickdraw" or "mnist"),
        for the app and ``NeuralNetworks predict``. Returns the path written.
        """
        if not self.built:
            raise RuntimeError("Cannot save a model that is not built: fit it or give input_shape first")
        if labels is not None:
            self.labels = _as_labels(labels)
        if preprocessing is not None:
            self.preprocessing = str(preprocessing)
        config = {"format": saving.FORMAT_NAME, "version": saving.FORMAT_VERSION, "model": self.get_config(),
                  "labels": None if self.labels is None else {str(k): v for k, v in self.labels.items()},
                  "preprocessing": self.preprocessing,
                  "rng_state": self.rng.bit_generator.state}
        arrays = self.get_weights()
        if self.loss is not None:
            config["compile"] = {"loss": type(self.loss).__name__, "loss_config": self.loss.get_config(),
                                 "metrics": [name for name, _ in self.metrics]}
            if include_optimizer and self.optimizer is not None:
                config["compile"]["optimizer"] = {"class_name": type(self.optimizer).__name__,
                                                  "config": self.optimizer.get_config(),
                                                  "iterations": self.optimizer.iterations}
                for key, slots in self.optimizer.slots.items():
                    for slot, value in slots.items():
                        arrays[f"optimizer/{key}/{slot}"] = value
        return saving.write(model_dir, config, arrays)


def load(model_dir: str | os.PathLike) -> Sequential:
    """Read a model written by ``Sequential.save``; raise ``saving.ModelFileError`` naming what was wrong."""
    return saving.load_model(model_dir)
