"""Sequential: a stack of layers with Keras' add / compile / fit / evaluate / predict / save, and ``load``.

This module builds the stack and runs it (inference, and the gradient path of one training step); the
training loop lives in ``training``, the packed weight buffers in ``weights``, the model file in ``saving``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import optional_seed, positive_int, text
from ..budget import DEFAULT_BUDGET, Budget
from . import activations, inspection, parallel, saving, sources, training
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import weights as weights_module
from ._inputs import as_classification_batch, as_labels, as_samples, as_targets
from ._threads import BlasThreads, multiply_adds_per_sample
from .layers import REGISTRY as LAYER_REGISTRY
from .layers import Dense, Layer

INFERENCE_BATCH_SIZE = training.INFERENCE_BATCH_SIZE
NonFiniteOutputError = training.NonFiniteOutputError  # what predict raises, named where users call it
# predict takes fewer than INFERENCE_BATCH_SIZE samples at a time when a batch's largest layer output and working
# arrays would exceed this many values (256 MiB in float32): only for layers far wider than 28x28 images need.
INFERENCE_BATCH_ELEMENTS = 1 << 26
SUPPORTED_DTYPES = ("float32", "float64")

Labels = dict[int, str]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


class Sequential:
    """A linear stack of layers.

    >>> model = Sequential(seed=0)
    >>> model.add(layers.Dense(units=3, activation="tanh", input_shape=(2,)))
    >>> model.add(layers.Dense(units=1, activation="tanh"))
    >>> model.compile(optimizer=optimizers.SGD(0.1), loss=losses.MeanSquaredError())

    ``seed`` fixes initial weights, shuffling and dropout, so two runs with the same seed are bit-identical.
    Once built, the weights live in ``model.flat`` (one contiguous buffer each for parameters, gradients and
    state; see ``weights.FlatWeights``).
    """

    def __init__(self, layers: Iterable[Layer] | None = None, *, name: str = "sequential",
                 seed: int | None = None, dtype: str = "float32") -> None:
        try:
            supported = str(np.dtype(dtype)) in SUPPORTED_DTYPES
        except (TypeError, ValueError):
            supported = False
        if not supported:
            raise ValueError(f"Sequential supports dtype float32 or float64. Received: dtype={dtype!r}")
        self.name = text("Sequential", "name", name, DEFAULT_BUDGET.max_name_chars)
        self.dtype = np.dtype(dtype)
        self.seed = optional_seed("Sequential", "seed", seed)
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.labels: Labels | None = None
        self.preprocessing: str | None = None  # how raw images become inputs ("quickdraw", "mnist"), if known
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics: list[tuple[str, metrics_module.Metric]] = []
        self.stop_training = False
        self.history: callbacks_module.History | None = None
        self.flat: weights_module.FlatWeights | None = None
        self._plan: training.StepPlan | None = None
        self._threads = BlasThreads()
        self._elements_per_sample = 0  # the largest output plus working arrays of a layer, per sample
        self._name_counts: dict[str, int] = {}
        for layer in layers or ():
            self.add(layer)

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], activation: activations.Identifier = "relu",
                   output_activation: activations.Identifier = "linear", **kwargs: Any) -> Sequential:
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

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Sequential:
        """Rebuild an untrained model from ``get_config()``; layer classes come from ``layers.REGISTRY``."""
        model = cls(name=config["name"], dtype=config["dtype"], seed=config.get("seed"))
        for entry in config["layers"]:
            layer_class = LAYER_REGISTRY.get(entry["class_name"])
            if layer_class is None:
                raise ValueError(f"unknown layer class {entry['class_name']!r}; known: {', '.join(LAYER_REGISTRY)}")
            model.add(layer_class.from_config(entry["config"]))
        if config.get("input_shape") is not None and not model.built:
            model.build(config["input_shape"])
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
        self._layers_changed()

    def _build_layer(self, layer: Layer, input_shape: tuple[int, ...], after: Layer | None) -> None:
        where = f"after {after.name} (output shape {after.output_shape})" if after else \
            f"with input shape {tuple(input_shape)}"
        try:
            layer.build(tuple(input_shape), self.rng, self.dtype)
        except ValueError as error:
            raise ValueError(f"Cannot add {layer.name} {where}: {error}") from None
        except MemoryError as error:
            raise ValueError(f"Cannot add {layer.name} {where}: its arrays do not fit in memory ({error})") from None

    def build(self, input_shape: Sequence[int]) -> None:
        """Build every layer for samples of ``input_shape`` (batch axis excluded), then pack the weights."""
        if not self.layers:
            raise ValueError("The model has no layers; add some before building it")
        shape: tuple[int, ...] = tuple(input_shape)
        previous: Layer | None = None
        for layer in self.layers:
            if not layer.built:
                self._build_layer(layer, shape, after=previous)
            shape, previous = layer.output_shape, layer
        self._layers_changed()

    def _layers_changed(self) -> None:
        """Once every layer is built: pack the weights into ``flat`` (unless already) and size the products."""
        self._plan = None
        if self.built:
            if self.flat is None or not self.flat.is_bound_to(self.layers):
                self.flat = weights_module.FlatWeights(self.layers, self.dtype)
            self._threads.product_per_sample = multiply_adds_per_sample(self.layers)
            self._elements_per_sample = max(math.prod(layer.output_shape) + layer.working_elements_per_sample(
                layer.input_shape) for layer in self.layers)

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

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print each layer's name and type, output shape and parameter count, then the totals."""
        print_fn(inspection.format_summary(self))

    # -- compiling and the gradient path ------------------------------------------------------------------
    def compile(self, optimizer: str | optimizers_module.Optimizer = "adam",
                loss: str | losses_module.Loss = "categorical_crossentropy",
                metrics: Sequence[str | metrics_module.Metric] | None = None) -> None:
        """Choose the optimizer, the loss and the metrics reported during training."""
        if isinstance(metrics, str) or (metrics is not None and not isinstance(metrics, Sequence)):
            raise TypeError(f"compile expects `metrics` to be a list, e.g. metrics=['accuracy']. Received: {metrics!r}")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self.metrics = [metrics_module.get(m) for m in (metrics or [])]
        self._plan = None
        if self.built:
            self.prepare_training()

    def prepare_training(self) -> None:
        """Decide what every training step does, if layers or compile changed since: pack the weights into
        ``flat``, plan the backward walk, bind the optimizer to ``flat.params``. ``compile`` and ``fit`` call
        it; call it yourself after replacing a layer in ``model.layers`` before ``compute_gradients``."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before training the model")
        if not self.built:
            raise RuntimeError("The model is not built yet: give the first layer an input_shape or call build()")
        if self.flat is None or not self.flat.is_bound_to(self.layers):
            self._layers_changed()  # a layer was replaced or rebuilt since: pack again
        if self._plan is None:
            self._plan = training.StepPlan.of(self.layers, self.loss, self.flat)
        if not self.optimizer.is_built_for([self.flat.params]):
            self.optimizer.build([self.flat.params])

    @property
    def fuses_softmax(self) -> bool:
        """True when the last layer's softmax and the loss are fused (gradient at the logits: y_hat - y)."""
        self.prepare_training()
        return self._plan.fuses_softmax

    def prepare_data(self, x: object, y: object | None = None,
                     name: str = "x") -> tuple[np.ndarray, np.ndarray | None]:
        """Check ``x`` (and ``y``) as ``fit`` does and return them in the form the model computes with,
        building the model for ``x``'s sample shape if needed; raise naming what was wrong."""
        if not self.layers:
            raise ValueError("The model has no layers; add some first")
        x = as_samples(x, self.input_shape, name)
        if not self.built:
            self.build(x.shape[1:])
        if x.dtype.kind == "f" and x.dtype.itemsize > self.dtype.itemsize:  # values the model's dtype cannot hold
            largest = np.finfo(self.dtype).max
            if x.max() > largest or x.min() < -largest:
                raise ValueError(f"`{name}` holds values beyond the range of {self.dtype} (+-{largest:.3g}), the "
                                 f"model's dtype. Received values from {x.min():.3g} to {x.max():.3g}: scale them")
        if y is None:
            return x, None
        return x, as_targets(y, self.loss, self.output_shape, len(x), self.dtype,
                             name="y" if name == "x" else f"{name} labels")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run every layer on a batch already in the model's dtype."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def compute_gradients(self, x: np.ndarray, y: np.ndarray,
                          sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Forward (training mode) and backward on one prepared batch: write every gradient into
        ``flat.grads``, change no weight; return the batch loss and the predictions. ``sample_weight`` (one
        per sample) weighs each sample's loss and gradient (see ``nn.weighting``)."""
        if self._plan is None:
            self.prepare_training()
        plan = self._plan
        y_pred = self.forward(np.asarray(x, dtype=self.dtype), training=True)
        weighted = sample_weight is not None
        loss_value = losses_module.weighted(self.loss, y, y_pred, sample_weight) if weighted else self.loss(y, y_pred)
        if plan.backward:
            grad = self.loss.logits_gradient(y, y_pred) if plan.fuses_softmax else self.loss.gradient(y, y_pred)
            if weighted:  # every loss is a sum of per-sample terms: weighting a row of dL/dy weighs its sample
                grad = grad * np.asarray(sample_weight, dtype=grad.dtype).reshape(-1, *(1,) * (grad.ndim - 1))
            for backward in plan.backward:
                grad = backward(grad)
        return loss_value, y_pred

    def apply_gradients(self) -> None:
        """One optimizer step from the gradients in ``flat.grads`` (as ``compute_gradients`` left them, or as
        an engine changed them in between, e.g. averaged over processes)."""
        if self._plan is None:
            self.prepare_training()
        self.optimizer.apply(self._plan.gradients)

    def train_on_batch(self, x: np.ndarray, y: np.ndarray,
                       sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """One gradient step on one prepared batch; returns the batch loss and the predictions."""
        loss_value, y_pred = self.compute_gradients(x, y, sample_weight)
        if not np.isfinite(loss_value):  # a step from such gradients would turn every weight into NaN
            raise training.NonFiniteError(f"The loss became {loss_value}: lower the learning rate or scale the "
                                          "inputs (e.g. divide pixels by 255); no step was taken from it")
        self.apply_gradients()
        return loss_value, y_pred

    def fit(self, x: object, y: object = None, epochs: int = 1, batch_size: int = 32,
            validation_data: object = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[callbacks_module.Callback] | None = None,
            verbose: int = 1, class_weight: object = None, sample_weight: object = None) -> callbacks_module.History:
        """Train for ``epochs`` passes over ``(x, y)`` in batches; return the History of epoch logs.

        ``x`` may also be a ``sources.SampleSource`` (``y`` left out): a dataset read batch by batch, e.g.
        ``data.stream("quickdraw", ...).train``; ``validation_data`` may be one too. ``validation_split`` holds
        back that fraction of the samples, chosen after shuffling (so class-sorted data still gives a validation
        set of every class); ``validation_data`` takes precedence. In a process started by ``mpiexec`` (or
        ``srun``) with several processes, training is data-parallel over all of them (see ``nn.parallel``).
        ``class_weight`` ({class index: weight} or "balanced") and ``sample_weight`` (one per sample of ``x``)
        weigh the training loss as in Keras (``nn.weighting``).
        """
        return parallel.trainer_for(self).fit(x, y, epochs=epochs, batch_size=batch_size,
                                              validation_data=validation_data, validation_split=validation_split,
                                              shuffle=shuffle, callbacks=callbacks, verbose=verbose,
                                              class_weight=class_weight, sample_weight=sample_weight)

    def blas_threads(self, batch_size: int) -> contextlib.AbstractContextManager:
        """The context a loop over batches of ``batch_size`` runs in: one BLAS thread while products are small."""
        return self._threads.limit(batch_size)

    # -- inference ----------------------------------------------------------------------------------------
    def evaluate(self, x: object, y: object = None, batch_size: int | None = None, return_dict: bool = False,
                 verbose: int = 0) -> float | list[float] | dict[str, float]:
        """Loss and metrics on ``(x, y)`` or on a ``sources.SampleSource`` (``y`` left out): a float (no
        metrics), ``[loss, *metrics]``, or a dict."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before model.evaluate()")
        if batch_size is not None:
            batch_size = positive_int("evaluate", "batch_size", batch_size)
        if sources.is_source(x):
            logs = training.Trainer(self).evaluate(x)
        else:
            if y is None:
                raise ValueError("evaluate(x, y) needs the labels `y` (or `x` a SampleSource, which holds them)")
            x, y = self.prepare_data(x, y)
            logs = training.evaluate(self, x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x: object, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Model outputs for every sample of ``x``, computed in batches; caches nothing.

        Raises ``NonFiniteOutputError`` rather than return infinities or NaN (inputs or weights so large that
        the arithmetic overflows)."""
        if sources.is_source(x):
            raise TypeError("predict returns every output at once, which a SampleSource may not fit: predict on "
                            "its batches, model.predict(source.gather(index)[0]), or use model.evaluate(source)")
        if batch_size is not None:
            batch_size = positive_int("predict", "batch_size", batch_size)
        x, _ = self.prepare_data(x)
        size = batch_size or max(1, min(INFERENCE_BATCH_SIZE, INFERENCE_BATCH_ELEMENTS // self._elements_per_sample))
        return training.predict(self, x, size)

    def __call__(self, x: object = None, *, data: object = None, training: bool = False) -> Any:
        """``model(x)``: the outputs for the batch ``x``, as in Keras (``training=True`` runs dropout and batch
        statistics). ``model(data=sample)``: classify one sample, ``(label, {label: score, ...})`` sorted by
        score; a batch of samples gives a list of those."""
        if (x is None) == (data is None):
            raise TypeError("Call the model on a batch, model(x), or on samples to classify, model(data=...)")
        if data is not None:
            return self._classify(data)
        if not training:
            return self.predict(x)
        x, _ = self.prepare_data(x)
        return self.forward(np.asarray(x, dtype=self.dtype), training=True).copy()

    def _classify(self, data: object) -> tuple[str | int, dict[str | int, float]] | list:
        if not self.built:
            raise RuntimeError("The model is not built yet: give the first layer an input_shape or fit it first")
        batch, single = as_classification_batch(data, self.input_shape)
        scores = self.predict(batch)
        names = self.labels or {}
        results = []
        for row in scores.reshape(len(scores), -1):
            order = np.argsort(-row, kind="stable")
            ranked = {names.get(int(i), int(i)): float(row[i]) for i in order}
            results.append((names.get(int(order[0]), int(order[0])), ranked))
        return results[0] if single else results

    def inspect(self, x: object, y: object | None = None) -> list:
        """Per layer: output shape, parameter count, activations on ``x`` and (given ``y``) gradients."""
        return inspection.inspect(self, x, y)

    # -- weights and files --------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight array in layer order, as Keras: per layer its trainable arrays, then its
        non-trainable ones (Dense: kernel, bias; BatchNormalization: gamma, beta, moving_mean, moving_variance)."""
        return [value.copy() for _, value in weights_module.weight_arrays(self.layers)]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy a list of arrays, in ``get_weights`` order, into the model; every shape must match."""
        weights_module.set_weight_list(self.layers, weights)

    def get_named_weights(self) -> dict[str, np.ndarray]:
        """Copies of every weight array, keyed "layer/name" (the keys of the model file)."""
        return {name: value.copy() for name, value in weights_module.weight_arrays(self.layers)}

    def set_named_weights(self, weights: Mapping[str, np.ndarray], source: str = "set_named_weights") -> None:
        """Copy arrays keyed "layer/name" into the model; every key and shape must match exactly."""
        weights_module.set_named_weights(self.layers, weights, source)

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data; ``Sequential.from_config`` rebuilds it."""
        layer_configs = []
        for layer in self.layers:
            try:
                layer_configs.append({"class_name": type(layer).__name__, "config": layer.get_config()})
            except activations.NotSerializableError as error:
                raise activations.NotSerializableError(f"layer {layer.name!r}: {error}") from None
        return {"name": self.name, "dtype": str(self.dtype), "seed": self.seed,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": layer_configs}

    def save(self, filepath: str | os.PathLike | None = None, labels: Labels | Sequence[str] | None = None,
             include_optimizer: bool = True, preprocessing: str | None = None, *,
             model_dir: str | os.PathLike | None = None) -> Path:
        """Write the model (architecture, weights, labels, compile settings) to one file, atomically.

        ``filepath`` may be a file path (".npz" is appended if missing) or an existing folder, which then
        holds ``model.npz``; ``model_dir=`` is the same, under the name the original tutorial used. ``labels``
        and ``preprocessing`` (how raw drawings become inputs: "quickdraw" or "mnist") are kept on the model
        and written with it. Returns the path written.
        """
        if (filepath is None) == (model_dir is None):
            raise TypeError("save() takes the file path once: model.save(filepath) or model.save(model_dir=...)")
        before = self.labels, self.preprocessing
        if labels is not None:
            self.labels = as_labels(labels)
        if preprocessing is not None:
            self.preprocessing = preprocessing
        try:
            return saving.save_model(self, filepath if model_dir is None else model_dir,
                                     include_optimizer=include_optimizer)
        except BaseException:
            self.labels, self.preprocessing = before  # a failed save changes nothing
            raise


def load(filepath: str | os.PathLike, *, budget: Budget | None = None) -> Sequential:
    """Read a model written by ``Sequential.save``; raise ``saving.ModelFileError`` naming what was wrong.

    The file is checked against ``budget`` (default: ``budget.DEFAULT_BUDGET``) before anything is built:
    a file from a stranger cannot make it allocate more than the budget allows (see SECURITY.md)."""
    return saving.load_model(filepath, Sequential, budget=budget)
