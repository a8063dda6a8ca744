"""A model file's config, checked before anything is built or any array is read.

``parse(raw, budget)`` turns the ``__config__`` bytes into JSON data: UTF-8, no NaN or Infinity, no number
that overflows a float, integers of bounded length, bounded nesting, no key given twice. ``check(config,
budget)`` then checks every entry's type and range (each layer, optimizer, loss and schedule through its own
constructor, which allocates nothing), walks the layers' shape rules (``compute_output_shape``,
``weight_shapes``, ``state_shapes``, ``working_elements_per_sample``) from the input shape, and returns the
arrays the file must hold with their shapes; each size is held to the ``Budget`` on the way. Errors are
ValueError/TypeError naming the entry: ``model.layers[2] (dense_1): Dense expects a positive integer `units`.
Received: units=0``; ``saving`` reports them as ``ModelFileError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._config_checks import Shape, constructor_keys, entries, integer, type_name
from .._validation import optional_seed, shown, text
from ..budget import Budget
from . import config_layers, losses, metrics, optimizers, schedules

SUPPORTED_DTYPES = ("float32", "float64")
OPTIMIZER_PREFIX = "optimizer/"
LABEL_INDEX = re.compile(r"0|[1-9][0-9]*")
PCG64 = "PCG64"  # the bit generator of np.random.default_rng, which every model uses
PCG64_LIMIT = 2**128  # its state and increment are 128-bit integers
UINT32_LIMIT = 2**32
MAX_METRICS = 64
MAX_HISTORY_KEYS = 64
MAX_HISTORY_EPOCHS = 100_000  # the command line's --epochs bound
MAX_HISTORY_NAME_CHARS = 128



@dataclass(frozen=True)
class Expected:
    """The arrays a model file must hold, by key: ``weights`` ("layer/param", non-trainable state included)
    always, ``slots`` ("optimizer/layer/param/slot") all or none; ``non_negative_slots`` names the slots
    (such as Adam's "v") that hold squares."""

    weights: dict[str, Shape]
    slots: dict[str, Shape]
    non_negative_slots: tuple[str, ...]


# -- parsing ------------------------------------------------------------------------------------------------
def _no_constant(name: str) -> None:
    raise ValueError(f"the config holds {name}, which is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"the number {shown(literal)} overflows a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise ValueError(f"the key {shown(repeated)} appears twice in one JSON object")
    return result


def _depth(value: Any) -> int:
    """Nesting depth of JSON data (a scalar is 0, ``[1]`` is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any] = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse(raw: bytes, budget: Budget) -> Any:
    """The config's JSON data, parsed strictly (see the module docstring)."""
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"the config is not UTF-8 text ({error})") from None

    def bounded_int(literal: str) -> int:
        if len(literal.lstrip("-")) > budget.max_integer_digits:
            raise ValueError(f"an integer of {len(literal)} digits, more than the budget's max_integer_digits "
                             f"({budget.max_integer_digits})")
        return int(literal)

    try:
        data = json.loads(source, parse_constant=_no_constant, parse_int=bounded_int, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except RecursionError:
        data, depth = None, math.inf
    except json.JSONDecodeError as error:
        raise ValueError(str(error)) from None
    else:
        depth = _depth(data)
    if depth > budget.max_json_depth:
        raise ValueError(f"the config nests JSON deeper than the budget's max_json_depth ({budget.max_json_depth})")
    return data


def _labels(labels: object, outputs: int, budget: Budget) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        raise TypeError(f"labels must be a JSON object of index -> name. Received {type_name(labels)}")
    if len(labels) != outputs or outputs > budget.max_labels:
        raise ValueError(f"labels must name each of the model's {outputs} outputs once (at most "
                         f"{budget.max_labels}). Received {len(labels)} labels")
    if any(LABEL_INDEX.fullmatch(key) is None for key in labels) or {int(key) for key in labels} != set(range(outputs)):
        raise ValueError(f"labels must be keyed by the output indices 0 to {outputs - 1}. "
                         f"Received keys {shown(sorted(labels))}")
    names = [text("labels", f"labels[{key}]", value, budget.max_name_chars) for key, value in labels.items()]
    if len(set(names)) != len(names):
        repeated = next(name for index, name in enumerate(names) if name in names[:index])
        raise ValueError(f"labels must be distinct; {repeated!r} names two outputs")


def check_preprocessing(preprocessing: object, input_shape: Shape | None = None) -> None:
    """Raise unless ``preprocessing`` is None, a drawing style ("quickdraw", "mnist"), or an image or table spec
    describing inputs of ``input_shape`` (see ``data.preprocessing``, which lives with the data it describes)."""
    from ..data import preprocessing as specs

    specs.check(preprocessing, input_shape)


def check_training_split(rule: object) -> None:
    """Raise unless ``rule`` names how a QuickDraw folder was split for training (``data.streaming.SPLIT_RULES``)."""
    from ..data.streaming import SPLIT_RULES

    if rule not in SPLIT_RULES:
        raise ValueError(f"training_split must be one of {', '.join(SPLIT_RULES)}. Received: {shown(rule)}")


def check_history(history: object) -> dict[str, list[float]]:
    """The training history (metric -> one finite number per epoch), bounded: at most ``MAX_HISTORY_KEYS``
    metrics of at most ``MAX_HISTORY_EPOCHS`` epochs each, every list as long as the first."""
    if not isinstance(history, dict) or len(history) > MAX_HISTORY_KEYS:
        raise ValueError(f"history must be a JSON object of at most {MAX_HISTORY_KEYS} metrics")
    lengths = set()
    for key, values in history.items():
        text("history", "metric name", key, MAX_HISTORY_NAME_CHARS)
        if not isinstance(values, list) or len(values) > MAX_HISTORY_EPOCHS or not all(
                isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                for value in values):
            raise ValueError(f"history[{shown(key)}] must be a list of at most {MAX_HISTORY_EPOCHS} finite numbers")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError("history must hold one value per epoch for every metric")
    return history


def _rng_state(state: object) -> None:
    state = entries(state, "rng_state", ("bit_generator", "state", "has_uint32", "uinteger"))
    if state["bit_generator"] != PCG64:
        raise ValueError(f"rng_state.bit_generator must be {PCG64!r}. Received: {shown(state['bit_generator'])}")
    inner = entries(state["state"], "rng_state.state", ("state", "inc"))
    for key in ("state", "inc"):
        integer(inner[key], f"rng_state.state.{key}", 0, PCG64_LIMIT - 1)
    integer(state["has_uint32"], "rng_state.has_uint32", 0, 1)
    integer(state["uinteger"], "rng_state.uinteger", 0, UINT32_LIMIT - 1)


def _optimizer(spec: object, params: dict[str, Shape], budget: Budget) -> tuple[dict[str, Shape], tuple[str, ...]]:
    spec = entries(spec, "compile.optimizer", ("class_name", "config"), ("iterations",))
    optimizer_class = optimizers.REGISTRY.get(spec["class_name"]) if isinstance(spec["class_name"], str) else None
    if optimizer_class is None:
        raise ValueError(f"compile.optimizer: unknown optimizer {shown(spec['class_name'])}; known: "
                         f"{', '.join(optimizers.REGISTRY)}")
    config = entries(spec["config"], "compile.optimizer.config", (), constructor_keys(optimizer_class))
    if isinstance(config.get("learning_rate"), dict):
        schedule = entries(config["learning_rate"], "compile.optimizer.config.learning_rate", ("schedule", "config"))
        if not isinstance(schedule["schedule"], str) or schedule["schedule"] not in schedules.REGISTRY:
            raise ValueError(f"compile.optimizer.config.learning_rate: unknown schedule "
                             f"{shown(schedule['schedule'])}; known: {', '.join(schedules.REGISTRY)}")
        if not isinstance(schedule["config"], dict):
            raise TypeError("compile.optimizer.config.learning_rate.config must be a JSON object")
    try:
        optimizer = optimizer_class.from_config(config)
    except (TypeError, ValueError) as error:
        raise type(error)(f"compile.optimizer: {error}") from None
    integer(spec.get("iterations", 0), "compile.optimizer.iterations", 0, budget.max_iterations)
    slots = {f"{OPTIMIZER_PREFIX}{name}/{slot}": shape for name, shape in params.items()
             for slot in optimizer.slot_names}
    if slots.keys() & params.keys():
        raise ValueError(f"the array name {shown(sorted(slots.keys() & params.keys())[0])} would be both a weight and "
                         "an optimizer slot; rename the layer")
    return slots, tuple(optimizer.non_negative_slots)


def _compile(spec: object, params: dict[str, Shape], budget: Budget) -> tuple[dict[str, Shape], tuple[str, ...]]:
    spec = entries(spec, "compile", ("loss",), ("loss_config", "metrics", "optimizer"))
    loss_class = losses.REGISTRY.get(spec["loss"]) if isinstance(spec["loss"], str) else None
    if loss_class is None:
        raise ValueError(f"compile.loss: unknown loss {shown(spec['loss'])}; known: {', '.join(losses.REGISTRY)}")
    loss_config = entries(spec.get("loss_config", {}), "compile.loss_config", (), constructor_keys(loss_class))
    try:
        loss_class(**loss_config)
    except (TypeError, ValueError) as error:
        raise type(error)(f"compile.loss_config: {error}") from None
    names = spec.get("metrics", [])
    if not isinstance(names, list) or len(names) > MAX_METRICS or not all(isinstance(n, str) for n in names):
        raise TypeError(f"compile.metrics must be a list of at most {MAX_METRICS} metric names")
    for name in names:
        metrics.get(name)
    if "optimizer" not in spec:
        return {}, ()
    return _optimizer(spec["optimizer"], params, budget)


def check(config: dict[str, Any], budget: Budget) -> Expected:
    """Check every entry of a model file's config (format and version already checked) and return the arrays
    the file must hold; raise ValueError/TypeError naming the first entry that is wrong."""
    config = entries(config, "the config", ("format", "version", "model"),
                     ("labels", "preprocessing", "rng_state", "compile", "history", "training_split"))
    functional = isinstance(config["model"], dict) and "calls" in config["model"]
    if functional:
        model = entries(config["model"], "model", config_layers.GRAPH_KEYS, config_layers.GRAPH_OPTIONAL_KEYS)
    else:
        model = entries(config["model"], "model", config_layers.SEQUENTIAL_KEYS, ("seed",))
    text("model", "name", model["name"], budget.max_name_chars)
    if model["dtype"] not in SUPPORTED_DTYPES:
        raise ValueError(f"model.dtype must be one of {', '.join(SUPPORTED_DTYPES)}. "
                         f"Received: {shown(model['dtype'])}")
    optional_seed("model", "seed", model.get("seed"))
    walk = config_layers.Walk(budget, model["dtype"])
    output_shapes = config_layers.graph(model, walk) if functional else [config_layers.sequential(model, walk)]
    if config.get("labels") is not None and len(output_shapes) > 1:
        raise ValueError("labels name the outputs of a model with one output; this model has "
                         f"{len(output_shapes)}")
    _labels(config.get("labels"), math.prod(output_shapes[0]), budget)
    inputs = [tuple(spec["shape"]) for spec in model["inputs"]] if functional else [tuple(model["input_shape"])]
    if config.get("preprocessing") is not None and len(inputs) > 1:
        raise ValueError(f"preprocessing describes the one input of a model; this model has {len(inputs)}")
    check_preprocessing(config.get("preprocessing"), inputs[0])
    if config.get("history") is not None:
        check_history(config["history"])
    if "training_split" in config:
        check_training_split(config["training_split"])
    if config.get("rng_state") is not None:
        _rng_state(config["rng_state"])
    arrays = walk.arrays
    slots, non_negative = _compile(config["compile"], arrays.trainable, budget) if config.get("compile") else ({}, ())
    return Expected({**arrays.trainable, **arrays.frozen, **arrays.state}, slots, non_negative)
