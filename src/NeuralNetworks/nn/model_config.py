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

import inspect
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._validation import optional_seed, shown, text
from ..budget import Budget
from . import losses, metrics, optimizers, schedules
from .layers import REGISTRY as LAYER_REGISTRY

SUPPORTED_DTYPES = ("float32", "float64")
OPTIMIZER_PREFIX = "optimizer/"
LABEL_INDEX = re.compile(r"0|[1-9][0-9]*")
PCG64 = "PCG64"  # the bit generator of np.random.default_rng, which every Sequential uses
PCG64_LIMIT = 2**128  # its state and increment are 128-bit integers
UINT32_LIMIT = 2**32
MAX_METRICS = 64
MAX_HISTORY_KEYS = 64
MAX_HISTORY_EPOCHS = 100_000  # the command line's --epochs bound
MAX_HISTORY_NAME_CHARS = 128

Shape = tuple[int, ...]


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


# -- the entries --------------------------------------------------------------------------------------------
def _type_name(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def entries(value: object, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """``value`` as a JSON object holding every ``required`` key and nothing beyond ``optional``."""
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a JSON object. Received {_type_name(value)}")
    required = set(required)
    missing, unknown = sorted(required - value.keys()), sorted(value.keys() - required - set(optional))
    if missing or unknown:
        allowed = f" (optionally {', '.join(sorted(set(optional)))})" if optional else ""
        raise ValueError(f"{where} must have the keys {', '.join(sorted(required)) or 'none'}{allowed}; "
                         f"missing: {', '.join(missing) or 'none'}; "
                         f"unknown: {', '.join(shown(key) for key in unknown[:10]) or 'none'}")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer from {low} to {high}. Received: {shown(value)}")
    return value


def _shape(value: object, where: str, budget: Budget) -> Shape:
    """A sample shape: positive integers, each at most max_dimension, at most max_sample_elements in all."""
    if not isinstance(value, list | tuple) or not value or len(value) > budget.max_json_depth:
        raise ValueError(f"{where} must be a list of positive integers. Received: {shown(value)}")
    shape = tuple(_integer(axis, where, 1, budget.max_dimension) for axis in value)
    if math.prod(shape) > budget.max_sample_elements:
        raise ValueError(f"{where} {shape} holds {math.prod(shape)} values per sample, more than the budget's "
                         f"max_sample_elements ({budget.max_sample_elements})")
    return shape


def _layers(model: dict[str, Any], budget: Budget) -> tuple[dict[str, Shape], dict[str, Shape], Shape]:
    """Trainable and non-trainable arrays of every layer ("layer/param" -> shape) and the output shape."""
    entries_ = model["layers"]
    if not isinstance(entries_, list) or not 1 <= len(entries_) <= budget.max_layers:
        count = f" of {len(entries_)}" if isinstance(entries_, list) else ""
        raise ValueError(f"model.layers must be a list of 1 to {budget.max_layers} layers. "
                         f"Received {_type_name(entries_)}{count}")
    shape = _shape(model["input_shape"], "model.input_shape", budget)
    params: dict[str, Shape] = {}
    state: dict[str, Shape] = {}
    names: set[str] = set()
    parameter_count = operations = 0
    for index, entry in enumerate(entries_):
        where = f"model.layers[{index}]"
        entry = entries(entry, where, ("class_name", "config"))
        layer_class = LAYER_REGISTRY.get(entry["class_name"]) if isinstance(entry["class_name"], str) else None
        if layer_class is None:
            raise ValueError(f"{where}: unknown layer class {shown(entry['class_name'])}; known: "
                             f"{', '.join(LAYER_REGISTRY)}")
        config = entries(entry["config"], f"{where}.config", ("name",), _constructor_keys(layer_class))
        name = text(f"{where}.config", "name", config["name"], budget.max_name_chars)
        if name in names:
            raise ValueError(f"{where}: the layer name {name!r} is used twice; layer names must be unique")
        names.add(name)
        where = f"{where} ({name})"
        try:
            layer = layer_class.from_config(dict(config))
            if layer.input_shape is not None and layer.input_shape != shape:
                raise ValueError(f"declares input_shape {layer.input_shape} but receives {shape}")
            output = layer.compute_output_shape(shape)
            trainable, non_trainable = layer.weight_shapes(shape), layer.state_shapes(shape)
            working = layer.working_elements_per_sample(shape)
            operations += layer.operations_per_sample(shape) + math.prod(shape)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from None
        output = _shape(list(output), f"{where} output shape", budget)
        if working > budget.max_sample_elements:
            raise ValueError(f"{where} works on {working} values per sample, more than the budget's "
                             f"max_sample_elements ({budget.max_sample_elements})")
        for target, shapes in ((params, trainable), (state, non_trainable)):
            for key, array_shape in shapes.items():
                parameter_count += math.prod(array_shape)
                target[f"{name}/{key}"] = tuple(array_shape)
        if operations > budget.max_operations_per_sample:
            raise ValueError(f"{where}: one prediction would take {operations} operations, more than the budget's "
                             f"max_operations_per_sample ({budget.max_operations_per_sample})")
        if parameter_count > budget.max_parameters:
            raise ValueError(f"{where}: the model's weights reach {parameter_count} values, more than the budget's "
                             f"max_parameters ({budget.max_parameters})")
        shape = output
    return params, state, shape


def _constructor_keys(layer_class: type) -> tuple[str, ...]:
    """The keyword arguments a class's constructor chain accepts (the keys its saved config may have)."""
    keys: list[str] = []
    for klass in layer_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            keys += [p.name for p in inspect.signature(init).parameters.values()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    return tuple(dict.fromkeys(keys))


def _labels(labels: object, outputs: int, budget: Budget) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        raise TypeError(f"labels must be a JSON object of index -> name. Received {_type_name(labels)}")
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
        _integer(inner[key], f"rng_state.state.{key}", 0, PCG64_LIMIT - 1)
    _integer(state["has_uint32"], "rng_state.has_uint32", 0, 1)
    _integer(state["uinteger"], "rng_state.uinteger", 0, UINT32_LIMIT - 1)


def _optimizer(spec: object, params: dict[str, Shape], budget: Budget) -> tuple[dict[str, Shape], tuple[str, ...]]:
    spec = entries(spec, "compile.optimizer", ("class_name", "config"), ("iterations",))
    optimizer_class = optimizers.REGISTRY.get(spec["class_name"]) if isinstance(spec["class_name"], str) else None
    if optimizer_class is None:
        raise ValueError(f"compile.optimizer: unknown optimizer {shown(spec['class_name'])}; known: "
                         f"{', '.join(optimizers.REGISTRY)}")
    config = entries(spec["config"], "compile.optimizer.config", (), _constructor_keys(optimizer_class))
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
    _integer(spec.get("iterations", 0), "compile.optimizer.iterations", 0, budget.max_iterations)
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
    loss_config = entries(spec.get("loss_config", {}), "compile.loss_config", (), _constructor_keys(loss_class))
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
    model = entries(config["model"], "model", ("name", "dtype", "input_shape", "layers"), ("seed",))
    text("model", "name", model["name"], budget.max_name_chars)
    if model["dtype"] not in SUPPORTED_DTYPES:
        raise ValueError(f"model.dtype must be one of {', '.join(SUPPORTED_DTYPES)}. "
                         f"Received: {shown(model['dtype'])}")
    optional_seed("model", "seed", model.get("seed"))
    params, state, output_shape = _layers(model, budget)
    _labels(config.get("labels"), math.prod(output_shape), budget)
    check_preprocessing(config.get("preprocessing"), tuple(model["input_shape"]))
    if config.get("history") is not None:
        check_history(config["history"])
    if "training_split" in config:
        check_training_split(config["training_split"])
    if config.get("rng_state") is not None:
        _rng_state(config["rng_state"])
    slots, non_negative = _compile(config["compile"], params, budget) if config.get("compile") else ({}, ())
    return Expected({**params, **state}, slots, non_negative)
