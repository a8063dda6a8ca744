"""Models: ``Model`` (Keras' functional API: any graph of layers, one or several inputs and outputs) and
``Sequential`` (the one-input, one-chain case of the same graph, built with ``add``), and ``load``.

Both share everything else: compile / fit / evaluate / predict / save / summary, the gradient path of one
training step, the weights packed in ``flat``. The graph and its two walks live in ``graph``, the training
loop in ``training``, the model file in ``saving``, the tables of ``summary`` in ``inspection``; each takes the
model as an argument and none imports this module.
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
from . import activations, graph, inspection, parallel, saving, sources, training
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import weights as weights_module
from ._inputs import as_classification_batch, as_labels, as_samples, as_targets
from ._structure import astype
from ._threads import BlasThreads, multiply_adds_per_sample
from .layers import REGISTRY as LAYER_REGISTRY
from .layers import Dense, Input, Layer, registered_name, unknown_class_message
from .layers.nodes import SymbolicTensor

INFERENCE_BATCH_SIZE = training.INFERENCE_BATCH_SIZE
NonFiniteOutputError = training.NonFiniteOutputError  # what predict raises, named where users call it
# predict takes fewer than INFERENCE_BATCH_SIZE samples at a time when a batch's largest layer output and working
# arrays would exceed this many values (256 MiB in float32): only for layers far wider than 28x28 images need.
INFERENCE_BATCH_ELEMENTS = 1 << 26
SUPPORTED_DTYPES = ("float32", "float64")

Labels = dict[int, str]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _as_list(value: object) -> tuple[list, bool]:
    """``value`` as a list, and whether it was given as one (a model of several inputs or outputs)."""
    return (list(value), True) if isinstance(value, list | tuple) else ([value], False)


class Model:
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

    functional = True

    def __init__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor] | None = None,
                 outputs: SymbolicTensor | Sequence[SymbolicTensor] | None = None, *, name: str | None = None,
                 seed: int | None = None, dtype: str = "float32") -> None:
        try:
            supported = str(np.dtype(dtype)) in SUPPORTED_DTYPES
        except (TypeError, ValueError):
            supported = False
        if not supported:
            raise ValueError(f"{type(self).__name__} supports dtype float32 or float64. Received: dtype={dtype!r}")
        name = name or _snake_case(type(self).__name__)
        self.name = text(type(self).__name__, "name", name, DEFAULT_BUDGET.max_name_chars)
        self.dtype = np.dtype(dtype)
        self.seed = optional_seed(type(self).__name__, "seed", seed)
        self.rng = np.random.default_rng(seed)
        self.labels: Labels | None = None
        self.preprocessing: str | None = None  # how raw images become inputs ("quickdraw", "mnist"), if known
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics: list[tuple[str, metrics_module.Metric]] = []
        self.metric_names: list[str] = []
        self.stop_training = False
        self.history: callbacks_module.History | None = None
        self.flat: weights_module.FlatWeights | None = None
        self._plan: training.StepPlan | None = None
        self._threads = BlasThreads()
        self._elements_per_sample = 0  # the largest output plus working arrays of a layer, per sample
        self._name_counts: dict[str, int] = {}
        self._graph: graph.Graph | None = None
        self._several_inputs = self._several_outputs = False
        if inputs is None and outputs is None and not self.functional:
            return
        if inputs is None or outputs is None:
            raise TypeError("Model(inputs=..., outputs=...) needs both: the layers.Input tensors and the tensors "
                            "the layers computed from them")
        input_list, self._several_inputs = _as_list(inputs)
        output_list, self._several_outputs = _as_list(outputs)
        self._graph = graph.from_tensors(input_list, output_list)
        for layer in self._graph.layers:
            self._name(layer, self._graph.layers)
        shapes = dict(enumerate(self._graph.input_shapes))
        for call in self._graph.calls:
            layer = call.layer
            received = [shapes[slot] for slot in call.inputs] if layer.several_inputs else shapes[call.inputs[0]]
            if not layer.built:
                self._build_layer(layer, received, where=f"with input shape {received}")
            shapes[call.output] = layer.output_shape
        self._layers_changed()

    # -- building -----------------------------------------------------------------------------------------
    def _name(self, layer: Layer, others: Sequence[Layer]) -> None:
        """Give an unnamed layer the next free "<type>_<n>" (a counter the model holds); refuse a name used twice."""
        taken = {other.name for other in others if other is not layer}
        if layer.name is None:
            base = _snake_case(type(layer).__name__)
            while layer.name is None or layer.name in taken:
                self._name_counts[base] = self._name_counts.get(base, 0) + 1
                layer.name = f"{base}_{self._name_counts[base]}"
        elif layer.name in taken:
            raise ValueError(f"The model already has a layer named {layer.name!r}; layer names must be unique")

    def _build_layer(self, layer: Layer, input_shape: Any, where: str) -> None:
        try:
            layer.build(input_shape, self.rng, self.dtype)
        except ValueError as error:
            raise ValueError(f"Cannot add {layer.name} {where}: {error}") from None
        except MemoryError as error:
            raise ValueError(f"Cannot add {layer.name} {where}: its arrays do not fit in memory ({error})") from None

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
    def graph(self) -> graph.Graph:
        """The calls the model runs (see ``nn.graph``)."""
        return self._graph

    @property
    def layers(self) -> list[Layer]:
        return self._graph.layers

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> tuple[int, ...] | list[tuple[int, ...]] | None:
        shapes = self._graph.input_shapes
        return list(shapes) if self._several_inputs else shapes[0]

    @property
    def output_shape(self) -> tuple[int, ...] | list[tuple[int, ...]] | None:
        shapes = self._graph.output_shapes()
        return shapes if self._several_outputs else shapes[0]

    @property
    def output_names(self) -> list[str]:
        names = {**dict(enumerate(self.graph.input_names)),
                 **{call.output: call.layer.name for call in self.graph.calls}}
        return [str(names[slot]) for slot in self.graph.outputs]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print each layer's name and type, output shape, parameter count (and, for a graph, what it is
        connected to), then the totals: trainable, and non-trainable (moving statistics, frozen layers)."""
        print_fn(inspection.format_summary(self))

    # -- compiling and the gradient path ------------------------------------------------------------------
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

    def prepare_data(self, x: object, y: object | None = None, name: str = "x") -> tuple[Any, Any]:
        """Check ``x`` (and ``y``) as ``fit`` does and return them in the form the model computes with (arrays;
        tuples of arrays for several inputs or outputs), building the model for ``x``'s sample shape if
        needed; raise naming what was wrong."""
        if not self.layers:
            raise ValueError("The model has no layers; add some first")
        if self._several_inputs:
            x = self._check_several(x, self.graph.input_names, name)
            x = tuple(as_samples(part, shape, f"{name}[{index}]") for index, (part, shape)
                      in enumerate(zip(x, self.graph.input_shapes, strict=True)))
            n = {len(part) for part in x}
            if len(n) > 1:
                raise ValueError(f"`{name}` holds inputs of different lengths {sorted(n)}: one row per sample each")
        else:
            x = as_samples(x, self.input_shape, name)
            if not self.built:
                self.build(x.shape[1:])
        for part in x if isinstance(x, tuple) else (x,):
            self._check_range(part, name)
        if y is None:
            return x, None
        y_name = "y" if name == "x" else f"{name} labels"
        n = len(x[0]) if isinstance(x, tuple) else len(x)
        if not self._several_outputs:
            return x, as_targets(y, self.loss, self.output_shape, n, self.dtype, name=y_name)
        y = self._check_several(y, self.output_names, y_name)
        return x, tuple(as_targets(part, self.loss, shape, n, self.dtype, name=f"{y_name}[{index}]")
                        for index, (part, shape) in enumerate(zip(y, self.output_shape, strict=True)))

    @staticmethod
    def _check_several(value: object, names: list[str], name: str) -> list:
        """A list of arrays, one per name (a dict keyed by the names is taken too)."""
        if isinstance(value, Mapping):
            missing = [key for key in names if key not in value]
            if missing or len(value) != len(names):
                raise ValueError(f"`{name}` must be keyed by {', '.join(names)}. Received keys {list(value)[:10]}")
            value = [value[key] for key in names]
        if not isinstance(value, list | tuple) or len(value) != len(names):
            raise ValueError(f"`{name}` must be a list of {len(names)} arrays ({', '.join(names)}), one per "
                             f"{'input' if name == 'x' else 'model input or output'}. Received: {type(value).__name__}")
        return list(value)

    def _check_range(self, x: np.ndarray, name: str) -> None:
        if x.dtype.kind == "f" and x.dtype.itemsize > self.dtype.itemsize:  # values the model's dtype cannot hold
            largest = np.finfo(self.dtype).max
            if x.max() > largest or x.min() < -largest:
                raise ValueError(f"`{name}` holds values beyond the range of {self.dtype} (+-{largest:.3g}), the "
                                 f"model's dtype. Received values from {x.min():.3g} to {x.max():.3g}: scale them")

    def forward(self, x: Any, training: bool = False) -> Any:
        """Run the graph on a batch already in the model's dtype (a tuple of arrays for several inputs);
        return the output (a list for several outputs)."""
        outputs = self.graph.forward(list(x) if self._several_inputs else [x], training=training)
        return outputs if self._several_outputs else outputs[0]

    def compute_loss(self, y: Any, y_pred: Any) -> float:
        """The loss of predictions ``y_pred`` against prepared targets ``y``: summed over the outputs."""
        if not self._several_outputs:
            return self.loss(y, y_pred)
        return float(sum(self.loss(part, pred) for part, pred in zip(y, y_pred, strict=True)))

    def compute_gradients(self, x: Any, y: Any) -> tuple[float, Any]:
        """Forward (training mode) and backward on one prepared batch: write every gradient into
        ``flat.grads``, change no weight; return the batch loss and the predictions."""
        if self._plan is None:
            self.prepare_training()
        plan = self._plan
        y_pred = self.forward(astype(x, self.dtype), training=True)
        loss_value = self.compute_loss(y, y_pred)
        if plan.steps:
            targets = y if self._several_outputs else (y,)
            predictions = y_pred if self._several_outputs else (y_pred,)
            gradients = {}
            for slot, target, prediction in zip(self.graph.outputs, targets, predictions, strict=True):
                gradients[slot] = self.loss.logits_gradient(target, prediction) if slot in plan.fused_slots \
                    else self.loss.gradient(target, prediction)
            self.graph.backward(plan.steps, gradients)
        return loss_value, y_pred

    def apply_gradients(self) -> None:
        """One optimizer step from the gradients in ``flat.grads`` (as ``compute_gradients`` left them, or as
        an engine changed them in between, e.g. averaged over processes)."""
        if self._plan is None:
            self.prepare_training()
        self.optimizer.apply(self._plan.gradients)

    def train_on_batch(self, x: Any, y: Any) -> tuple[float, Any]:
        """One gradient step on one prepared batch; returns the batch loss and the predictions."""
        loss_value, y_pred = self.compute_gradients(x, y)
        if not np.isfinite(loss_value):  # a step from such gradients would turn every weight into NaN
            raise training.NonFiniteError(f"The loss became {loss_value}: lower the learning rate or scale the "
                                          "inputs (e.g. divide pixels by 255); no step was taken from it")
        self.apply_gradients()
        return loss_value, y_pred

    def fit(self, x: object, y: object = None, epochs: int = 1, batch_size: int = 32,
            validation_data: object = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[callbacks_module.Callback] | None = None,
            verbose: int = 1) -> callbacks_module.History:
        """Train for ``epochs`` passes over ``(x, y)`` in batches; return the History of epoch logs.

        ``x`` may also be a ``sources.SampleSource`` (``y`` left out): a dataset read batch by batch, e.g.
        ``data.stream("quickdraw", ...).train``; ``validation_data`` may be one too. ``validation_split`` holds
        back that fraction of the samples, chosen after shuffling (so class-sorted data still gives a validation
        set of every class); ``validation_data`` takes precedence. In a process started by ``mpiexec`` (or
        ``srun``) with several processes, training is data-parallel over all of them (see ``nn.parallel``).
        """
        return parallel.trainer_for(self).fit(x, y, epochs=epochs, batch_size=batch_size,
                                              validation_data=validation_data, validation_split=validation_split,
                                              shuffle=shuffle, callbacks=callbacks, verbose=verbose)

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
        for row in scores.reshape(len(scores), -1):
            order = np.argsort(-row, kind="stable")
            ranked = {names.get(int(i), int(i)): float(row[i]) for i in order}
            results.append((names.get(int(order[0]), int(order[0])), ranked))
        return results[0] if single else results

    def inspect(self, x: object, y: object | None = None) -> list:
        """Per layer call: output shape, parameter count, activations on ``x`` and (given ``y``) gradients."""
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

    def _layer_configs(self) -> list[dict[str, Any]]:
        configs = []
        for layer in self.layers:
            try:
                configs.append({"class_name": registered_name(layer), "config": layer.get_config()})
            except activations.NotSerializableError as error:
                raise activations.NotSerializableError(f"layer {layer.name!r}: {error}") from None
        return configs

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data; ``Model.from_config`` rebuilds it: the inputs, each layer once,
        and the calls in order, each naming the tensor slots it reads (inputs first, then one per call)."""
        return {"name": self.name, "dtype": str(self.dtype), "seed": self.seed,
                "inputs": [{"name": name, "shape": list(shape)}
                           for name, shape in zip(self.graph.input_names, self.graph.input_shapes, strict=True)],
                "layers": self._layer_configs(),
                "calls": [{"layer": call.layer.name, "inputs": list(call.inputs)} for call in self.graph.calls],
                "outputs": list(self.graph.outputs),
                "several_inputs": self._several_inputs, "several_outputs": self._several_outputs}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Model:
        """Rebuild an untrained model from ``get_config()``; layer classes come from ``layers.REGISTRY``."""
        by_name = {}
        for entry in config["layers"]:
            layer_class = LAYER_REGISTRY.get(entry["class_name"])
            if layer_class is None:
                raise ValueError(unknown_class_message(entry["class_name"]))
            layer = layer_class.from_config(dict(entry["config"]))
            by_name[layer.name] = layer
        tensors = [Input(shape=tuple(spec["shape"]), name=spec["name"]) for spec in config["inputs"]]
        inputs = list(tensors)
        for call in config["calls"]:
            layer = by_name[call["layer"]]
            arguments = [tensors[slot] for slot in call["inputs"]]
            tensors.append(layer(arguments if layer.several_inputs else arguments[0]))
        outputs = [tensors[slot] for slot in config["outputs"]]
        return cls(inputs=inputs if config.get("several_inputs") else inputs[0],
                   outputs=outputs if config.get("several_outputs") else outputs[0],
                   name=config["name"], dtype=config["dtype"], seed=config.get("seed"))

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
        if chain is None or chain.layers != self._stack or len(chain.calls) != len(self._stack):
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
