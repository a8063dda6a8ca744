"""Models: ``Model`` (Keras' functional API: any graph of layers, one or several inputs and outputs) and
``Sequential`` (the one-input, one-chain case of the same graph, built with ``add``), and ``load``.

Both share everything else: compile / fit / evaluate / predict / save / summary, the gradient path of one
training step, the weights packed in ``flat``. The graph and its two walks live in ``graph``, the training
loop in ``training``, the model file in ``saving``, the tables of ``summary`` in ``inspection``; each takes the
model as an argument and none imports this module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import positive_int
from ..budget import Budget
from . import activations, graph, inspection, parallel, saving, sources, training
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import network as network_module
from . import optimizers as optimizers_module
from ._inputs import as_classification_batch, as_labels
from ._structure import astype
from .layers import REGISTRY as LAYER_REGISTRY
from .layers import Dense, Layer, unknown_class_message
from .network import SUPPORTED_DTYPES, Labels

INFERENCE_BATCH_SIZE = training.INFERENCE_BATCH_SIZE
NonFiniteOutputError = training.NonFiniteOutputError  # what predict raises, named where users call it
# predict takes fewer than INFERENCE_BATCH_SIZE samples at a time when a batch's largest layer output and working
# arrays would exceed this many values (256 MiB in float32): only for layers far wider than 28x28 images need.
INFERENCE_BATCH_ELEMENTS = 1 << 26

__all__ = ["Model", "Sequential", "load", "model_from_config", "SUPPORTED_DTYPES", "INFERENCE_BATCH_SIZE",
           "INFERENCE_BATCH_ELEMENTS", "NonFiniteOutputError", "Labels"]


class Model(network_module.Network):
    """A graph of layers from ``inputs`` to ``outputs``, as Keras' functional API builds it.

    >>> x = layers.Input(shape=(28, 28, 1))
    >>> h = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    >>> h = layers.Add()([h, layers.Conv2D(8, 3, padding="same")(h)])      # a skip connection
    >>> y = layers.Dense(10, activation="softmax")(layers.Flatten()(h))
    >>> model = Model(inputs=x, outputs=y, seed=0)

    ``inputs`` and ``outputs`` are one tensor or a list of them (then ``fit``, ``predict`` ... take and give
    lists of arrays, one per input or output). A layer called twice shares its weights. The layers are built
    here, in order, with the model's generator: ``seed`` fixes initial weights, shuffling and dropout.
    """

    def compile(self, optimizer: str | optimizers_module.Optimizer = "adam",
                loss: str | losses_module.Loss = "categorical_crossentropy",
                metrics: Sequence[str | metrics_module.Metric] | None = None) -> None:
        """Choose the optimizer, the loss (applied to each output, summed) and the metrics reported during
        training (of each output, named "<output layer>_<metric>" when there are several)."""
        if isinstance(metrics, str) or (metrics is not None and not isinstance(metrics, Sequence)):
            raise TypeError(f"compile expects `metrics` to be a list, e.g. metrics=['accuracy']. Received: {metrics!r}")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        chosen = [metrics_module.get(m) for m in (metrics or [])]
        self.metric_names = [name for name, _ in chosen]
        if self._several_outputs:
            self.metrics = [(f"{output}_{name}", metrics_module.OnOutput(metric, index))
                            for index, output in enumerate(self.output_names) for name, metric in chosen]
        else:
            self.metrics = chosen
        self._plan = None
        if self.built:
            self.prepare_training()

    def prepare_training(self) -> None:
        """Decide what every training step does, if layers, ``trainable`` flags or compile changed since: pack
        the trainable weights into ``flat``, plan the backward walk, bind the optimizer to ``flat.params``.
        ``compile`` and ``fit`` call it; call it yourself after replacing a layer in ``model.layers`` or
        freezing one, before ``compute_gradients``."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before training the model")
        if not self.built:
            raise RuntimeError("The model is not built yet: give the first layer an input_shape or call build()")
        if self.flat is None or not self.flat.is_bound_to(self.layers):
            self._layers_changed()  # a layer was replaced, rebuilt or (un)frozen since: pack again
        if self._plan is None:
            self._plan = training.StepPlan.of(self.graph, self.loss, self.flat)
        if not self.optimizer.is_built_for([self.flat.params]):
            self.optimizer.build([self.flat.params])

    @property
    def training_plan(self) -> training.StepPlan:
        """What a training step does (the backward walk, the fused outputs), prepared if needed."""
        self.prepare_training()
        return self._plan

    @property
    def fuses_softmax(self) -> bool:
        """True when an output's softmax and the loss are fused (gradient at the logits: y_hat - y)."""
        return bool(self.training_plan.fused_slots)

    def compute_loss(self, y: Any, y_pred: Any, sample_weight: np.ndarray | None = None) -> float:
        """The loss of predictions ``y_pred`` against prepared targets ``y``: summed over the outputs, each
        sample's term weighed by ``sample_weight`` if given (see ``nn.weighting``)."""
        def one(target: np.ndarray, prediction: np.ndarray) -> float:
            if sample_weight is None:
                return self.loss(target, prediction)
            return losses_module.weighted(self.loss, target, prediction, sample_weight)

        if not self._several_outputs:
            return one(y, y_pred)
        return float(sum(one(part, pred) for part, pred in zip(y, y_pred, strict=True)))

    def compute_gradients(self, x: Any, y: Any, sample_weight: np.ndarray | None = None) -> tuple[float, Any]:
        """Forward (training mode) and backward on one prepared batch: write every gradient into
        ``flat.grads``, change no weight; return the batch loss and the predictions. ``sample_weight`` (one
        per sample) weighs each sample's loss and gradient (see ``nn.weighting``)."""
        if self._plan is None:
            self.prepare_training()
        plan = self._plan
        y_pred = self.forward(astype(x, self.dtype), training=True)
        loss_value = self.compute_loss(y, y_pred, sample_weight)
        if plan.steps:
            targets = y if self._several_outputs else (y,)
            predictions = y_pred if self._several_outputs else (y_pred,)
            gradients = {}
            for slot, target, prediction in zip(self.graph.outputs, targets, predictions, strict=True):
                grad = self.loss.logits_gradient(target, prediction) if slot in plan.fused_slots \
                    else self.loss.gradient(target, prediction)
                if sample_weight is not None:  # every loss is a sum of per-sample terms: weigh each row of dL/dy
                    grad = grad * np.asarray(sample_weight, dtype=grad.dtype).reshape(-1, *(1,) * (grad.ndim - 1))
                gradients[slot] = grad
            self.graph.backward(plan.steps, gradients)
        return loss_value, y_pred

    def apply_gradients(self) -> None:
        """One optimizer step from the gradients in ``flat.grads`` (as ``compute_gradients`` left them, or as
        an engine changed them in between, e.g. averaged over processes)."""
        if self._plan is None:
            self.prepare_training()
        self.optimizer.apply(self._plan.gradients)

    def train_on_batch(self, x: Any, y: Any, sample_weight: np.ndarray | None = None) -> tuple[float, Any]:
        """One gradient step on one prepared batch; returns the batch loss and the predictions."""
        loss_value, y_pred = self.compute_gradients(x, y, sample_weight)
        training.check_step_loss(loss_value)
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

    def predict(self, x: object, batch_size: int | None = None, verbose: int = 0) -> Any:
        """Model outputs for every sample of ``x``, computed in batches (a list of arrays for several
        outputs); caches nothing.

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
        output = self.forward(astype(x, self.dtype), training=True)
        return [part.copy() for part in output] if self._several_outputs else output.copy()

    def _classify(self, data: object) -> tuple[str | int, dict[str | int, float]] | list:
        if not self.built:
            raise RuntimeError("The model is not built yet: give the first layer an input_shape or fit it first")
        if self._several_inputs or self._several_outputs:
            raise TypeError("model(data=...) classifies samples with a model of one input and one output; call "
                            "model.predict([...]) for this one")
        batch, single = as_classification_batch(data, self.input_shape)
        scores = self.predict(batch)
        names = self.labels or {}
        results = []
        for row in scores.reshape(len(scores), -1):  # Python ints and floats from tolist: 3x faster than per item
            order, values = (-row).argsort(kind="stable").tolist(), row.tolist()
            ranked = {names.get(i, i): values[i] for i in order}
            results.append((names.get(order[0], order[0]), ranked))
        return results[0] if single else results

    def inspect(self, x: object, y: object | None = None) -> list:
        """Per layer call: output shape, parameter count, activations on ``x`` and (given ``y``) gradients."""
        return inspection.inspect(self, x, y)

    # -- files ----------------------------------------------------------------------------------------------
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


class Sequential(Model):
    """A linear stack of layers: the one-input, one-chain ``Model``.

    >>> model = Sequential(seed=0)
    >>> model.add(layers.Dense(units=3, activation="tanh", input_shape=(2,)))
    >>> model.add(layers.Dense(units=1, activation="tanh"))
    >>> model.compile(optimizer=optimizers.SGD(0.1), loss=losses.MeanSquaredError())

    ``seed`` fixes initial weights, shuffling and dropout, so two runs with the same seed are bit-identical.
    Once built, the weights live in ``model.flat`` (one contiguous buffer each for parameters, gradients and
    state; see ``weights.FlatWeights``).
    """

    functional = False

    def __init__(self, layers: Iterable[Layer] | None = None, *, name: str = "sequential",
                 seed: int | None = None, dtype: str = "float32") -> None:
        super().__init__(name=name, seed=seed, dtype=dtype)
        self._stack: list[Layer] = []
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
                raise ValueError(unknown_class_message(entry["class_name"]))
            model.add(layer_class.from_config(dict(entry["config"])))
        if config.get("input_shape") is not None and not model.built:
            model.build(config["input_shape"])
        return model

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": str(self.dtype), "seed": self.seed,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": self._layer_configs()}

    @property
    def layers(self) -> list[Layer]:
        return self._stack

    @property
    def graph(self) -> graph.Graph:
        """The chain of ``layers`` (made again when the list changed, e.g. a layer replaced)."""
        chain = self._graph
        if chain is None or chain.layers != self._stack:
            if not self.built:
                raise RuntimeError("The model is not built yet: give the first layer an input_shape or call build()")
            chain = self._graph = graph.Graph.chain(self._stack[0].input_shape, self._stack)
        return chain

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self._stack[0].input_shape if self._stack else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self._stack[-1].output_shape if self.built else None

    def add(self, layer: Layer) -> None:
        """Append a layer, building it now if the incoming shape is known, so shape errors surface here."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer. Received: {layer!r}")
        if layer.built:
            raise ValueError(f"Layer {layer.name!r} already belongs to a model; create a new layer instead")
        if layer.several_inputs:
            raise TypeError(f"{type(layer).__name__} merges several tensors, which a Sequential cannot give it: "
                            "build the model with the functional API (layers.Input, models.Model)")
        self._name(layer, self._stack)
        if self._stack:
            previous = self._stack[-1]
            if previous.built:
                self._build_layer(layer, previous.output_shape,
                                  where=f"after {previous.name} (output shape {previous.output_shape})")
        elif layer.input_shape is not None:
            self._build_layer(layer, layer.input_shape, where=f"with input shape {tuple(layer.input_shape)}")
        self._stack.append(layer)
        self._graph = None
        self._layers_changed()

    def build(self, input_shape: Sequence[int]) -> None:
        """Build every layer for samples of ``input_shape`` (batch axis excluded), then pack the weights."""
        if not self._stack:
            raise ValueError("The model has no layers; add some before building it")
        shape: tuple[int, ...] = tuple(input_shape)
        previous: Layer | None = None
        for layer in self._stack:
            if not layer.built:
                where = f"after {previous.name} (output shape {previous.output_shape})" if previous else \
                    f"with input shape {shape}"
                self._build_layer(layer, shape, where=where)
            shape, previous = layer.output_shape, layer
        self._layers_changed()


def model_from_config(config: Mapping[str, Any]) -> Model:
    """A ``Model`` or ``Sequential`` rebuilt from its ``get_config()`` (a graph config has ``calls``)."""
    return Model.from_config(config) if "calls" in config else Sequential.from_config(config)


def load(filepath: str | os.PathLike, *, budget: Budget | None = None) -> Model:
    """Read a model written by ``save``; raise ``saving.ModelFileError`` naming what was wrong.

    The file is checked against ``budget`` (default: ``budget.DEFAULT_BUDGET``) before anything is built:
    a file from a stranger cannot make it allocate more than the budget allows (see SECURITY.md)."""
    return saving.load_model(filepath, model_from_config, budget=budget)
