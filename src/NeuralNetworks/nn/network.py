"""``Network``: what every model is, before training: a graph of built layers (``nn.graph``), its shapes, its
data checked into the form it computes with, its forward pass, its weights and its config.

``models.Model`` adds training and files on top; ``models.Sequential`` is the chain case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import optional_seed, text
from ..budget import DEFAULT_BUDGET
from . import activations, graph, inspection, training
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import weights as weights_module
from ._inputs import as_samples, as_targets
from ._threads import BlasThreads, multiply_adds_per_sample
from .layers import REGISTRY as LAYER_REGISTRY
from .layers import Input, Layer, registered_name, unknown_class_message
from .layers.nodes import SymbolicTensor

if TYPE_CHECKING:
    from .forked_steps import Workers

SUPPORTED_DTYPES = ("float32", "float64")

Labels = dict[int, str]

def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _as_list(value: object) -> tuple[list, bool]:
    """``value`` as a list, and whether it was given as one (a model of several inputs or outputs)."""
    return (list(value), True) if isinstance(value, list | tuple) else ([value], False)


class Network:
    """A graph of layers from ``inputs`` to ``outputs`` (see ``models.Model``), with everything but training."""

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
        # Copies of this model that computed parts of split training steps (``threaded_steps``), kept for the next
        # fit with the key (``_batch_parts.copy_key``) they were built for; None until a fit splits over threads.
        self.step_replicas: tuple[tuple[str, Any] | None, list[Network]] | None = None
        # The worker processes that computed parts of split training steps (``forked_steps``), kept for the next
        # fit likewise; None lets them go (they exit).
        self.step_workers: Workers | None = None
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

    # -- weights and config ---------------------------------------------------------------------------------
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
    def from_config(cls, config: Mapping[str, Any]) -> Network:
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
