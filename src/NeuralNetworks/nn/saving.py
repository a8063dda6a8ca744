"""The model file: one ``.npz`` with a JSON config and one array per "layer/param"; never pickle.

``__config__`` is UTF-8 JSON stored as a uint8 array: the format version, each layer's class name and config,
the input shape, dtype, labels and the compile settings. Every other entry is a weight named
"layer_name/param_name" (or a non-trainable state array such as a moving mean), or an optimizer slot named
"optimizer/layer_name/param_name/slot_name". The file is written to a temporary name in the same folder and
``os.replace``d into place, so a crash never leaves half a model.

``save_model(model, filepath)`` and ``load_model(filepath, from_config)`` are the pair; ``write`` and ``read``
are the file level beneath them. This module uses only the public API of the model and is imported by
``models``, so the function that rebuilds a model from its config is passed in (``models.load`` passes
``models.model_from_config``, which makes a ``Sequential`` or a functional ``Model``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._archive import NpzArchive
from .._validation import shown
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from . import atomic, model_config
from . import losses as losses_module
from . import optimizers as optimizers_module
from ._inputs import as_labels
from .activations import NotSerializableError
from .callbacks import History

FORMAT_NAME = "NeuralNetworks.Sequential"  # the format's public name since the first file: also a Model's
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
DEFAULT_FILENAME = "model.npz"
SUFFIX = ".npz"
OPTIMIZER_PREFIX = model_config.OPTIMIZER_PREFIX
TEMPORARY_SUFFIX = atomic.TEMPORARY_SUFFIX
temporary_name, remove_leftovers = atomic.temporary_name, atomic.remove_leftovers  # named where saves are
WEIGHT_ITEM_SIZES = (4, 8)  # weights and slots are float32 or float64, whatever the model computes in

class SavableModel(Protocol):
    """What this module reads and sets on a model: the public API of ``models.Model``."""

    built: bool
    labels: dict[int, str] | None
    preprocessing: str | None
    rng: np.random.Generator
    optimizer: Any
    loss: Any
    metric_names: list[str]
    flat: Any

    @property
    def output_shape(self) -> tuple[int, ...] | None: ...

    def get_config(self) -> dict[str, Any]: ...
    def get_named_weights(self) -> dict[str, np.ndarray]: ...
    def set_named_weights(self, weights: dict[str, np.ndarray], source: str = ...) -> None: ...
    def compile(self, optimizer: Any, loss: Any, metrics: Any = None) -> None: ...


class ModelFileError(ValueError):
    """A model file is missing, truncated, tampered with or not a NeuralNetworks model."""


def resolve_path(path: str | os.PathLike, *, for_writing: bool) -> Path:
    """Map a user's path to the model file: a folder holds ``model.npz``; ``.npz`` is appended if missing."""
    path = Path(path)
    if path.is_dir() or (for_writing and str(path).endswith(os.sep)):
        return path / DEFAULT_FILENAME
    if path.suffix == SUFFIX:
        return path
    with_suffix = path.with_name(path.name + SUFFIX)
    if for_writing or with_suffix.exists() or not path.exists():
        return with_suffix
    return path


def write(path: str | os.PathLike, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write ``config`` and ``arrays`` to the model file at ``path``; return the final path (see
    ``atomic.write_npz``: a temporary name beside it, locked while written, renamed into place)."""
    target = resolve_path(path, for_writing=True)
    payload = {CONFIG_KEY: np.frombuffer(json.dumps(config, allow_nan=False).encode("utf-8"), dtype=np.uint8)}
    for key, value in arrays.items():
        if key == CONFIG_KEY:
            raise ValueError(f"{CONFIG_KEY!r} is reserved and cannot name a weight")
        payload[key] = value
    return atomic.write_npz(target, payload)


def read(path: str | os.PathLike, *,
         budget: Budget | None = None) -> tuple[Path, dict[str, Any], dict[str, np.ndarray]]:
    """The file level beneath ``load_model``: the checked config and every array of a model file, without
    pickle and within ``budget``; raise ModelFileError naming the file and what was wrong."""
    budget = budget or DEFAULT_BUDGET
    target = resolve_path(path, for_writing=False)
    with _open(target, budget) as archive:
        config = _read_config(archive, target, budget)
        arrays = {key: archive.read(key) for key in archive.headers if key != CONFIG_KEY}
    return target, config, arrays


def _open(target: Path, budget: Budget) -> NpzArchive:
    return NpzArchive(target, budget, ModelFileError, kind="NeuralNetworks model file", what="model file",
                      max_bytes=budget.max_model_bytes, limit_name="max_model_bytes")


def _read_config(archive: NpzArchive, target: Path, budget: Budget) -> dict[str, Any]:
    """The ``__config__`` entry: its header checked (1-D bytes within the budget), then parsed strictly."""
    header = archive.headers.get(CONFIG_KEY)
    if header is None:
        raise ModelFileError(f"{target}: not a NeuralNetworks model file (it has no {CONFIG_KEY!r} entry)")
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise ModelFileError(f"{target}: not a NeuralNetworks model file ({CONFIG_KEY} is {header.dtype} of shape "
                             f"{header.shape}; expected UTF-8 JSON as uint8 bytes)")
    if header.nbytes > budget.max_config_bytes:
        raise ModelFileError(f"{target}: its {CONFIG_KEY} takes {bytes_text(header.nbytes)}, more than the budget's "
                             f"max_config_bytes ({bytes_text(budget.max_config_bytes)})")
    try:
        config = model_config.parse(archive.read(CONFIG_KEY).tobytes(), budget)
    except ValueError as error:
        raise ModelFileError(f"{target}: the model's {CONFIG_KEY} is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{target}: not a NeuralNetworks model file (format is not {FORMAT_NAME!r})")
    if config.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{target}: model format version {shown(config.get('version'))} is not supported "
            f"(this library reads version {FORMAT_VERSION})"
        )
    return config


def save_model(model: SavableModel, filepath: str | os.PathLike, *, include_optimizer: bool = True) -> Path:
    """Write ``model`` (architecture, weights, labels, compile settings and, with ``include_optimizer``, the
    optimizer's state so that training resumes exactly) to one file, atomically; return the path written."""
    if not model.built:
        raise RuntimeError("Cannot save a model that is not built: fit it or give input_shape first")
    try:
        architecture = model.get_config()
    except NotSerializableError as error:
        raise NotSerializableError(f"Cannot save the model to {filepath}: {error}") from None
    labels = _labels_for(model)
    config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "model": architecture,
              "labels": None if labels is None else {str(k): v for k, v in labels.items()},
              "preprocessing": model.preprocessing,
              "rng_state": model.rng.bit_generator.state}
    history = _history_for(model)
    if history:  # the epochs' logs, shown by `NeuralNetworks info`
        config["history"] = history
    if getattr(model, "training_split", None) is not None:  # which QuickDraw split trained it (data.streaming)
        model_config.check_training_split(model.training_split)
        config["training_split"] = model.training_split
    arrays = model.get_named_weights()
    if model.loss is not None:
        config["compile"] = {"loss": type(model.loss).__name__, "loss_config": model.loss.get_config(),
                             "metrics": list(model.metric_names)}
        optimizer = model.optimizer
        if include_optimizer and optimizer is not None:
            config["compile"]["optimizer"] = {"class_name": type(optimizer).__name__,
                                              "config": optimizer.get_config(), "iterations": optimizer.iterations}
            arrays.update(_optimizer_slots(model))
    _check_loadable(filepath, config, arrays)
    return write(filepath, config, arrays)


def _check_loadable(filepath: str | os.PathLike, config: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse to write what ``load_model`` would refuse: its config checks, under the same (default) budget, and
    finite arrays. Whatever ``save`` writes, ``load`` reads."""
    try:
        model_config.check(json.loads(json.dumps(config)), DEFAULT_BUDGET)
    except (ValueError, TypeError) as error:
        raise ValueError(f"Cannot save the model to {filepath}: models.load would refuse the file ({error})") from None
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise ValueError(f"Cannot save the model to {filepath}: {name} holds infinite or NaN values (training "
                             "diverged: lower the learning rate or scale the inputs)")


def _labels_for(model: SavableModel) -> dict[int, str] | None:
    """The model's labels, checked to name each output once (what ``load_model`` will require)."""
    labels = as_labels(model.labels)
    if labels is not None and isinstance(model.output_shape, list):
        raise ValueError("Labels name the outputs of a model with one output; this model has "
                         f"{len(model.output_shape)}: save it without labels")
    outputs = math.prod(model.output_shape) if labels is not None else 0
    if labels is not None and sorted(labels) != list(range(outputs)):
        raise ValueError(f"Cannot save labels {sorted(labels)[:10]} for a model with {outputs} outputs: give one "
                         f"label per output, indices 0 to {outputs - 1}")
    model_config.check_preprocessing(model.preprocessing, model.input_shape)
    return labels


def _history_for(model: SavableModel) -> dict[str, list[float]]:
    """The metrics of the last ``fit`` logged at every epoch as finite numbers (others are left out)."""
    history = getattr(getattr(model, "history", None), "history", None) or {}
    epochs = max((len(values) for values in history.values()), default=0)
    entries = list(history.items())[:model_config.MAX_HISTORY_KEYS]
    kept = {key: [float(value) for value in values] for key, values in entries
            if isinstance(key, str) and len(values) == epochs and all(
                isinstance(value, numbers.Real) and math.isfinite(value) for value in values)}
    return model_config.check_history(kept) if epochs else {}


def _optimizer_slots(model: SavableModel) -> dict[str, np.ndarray]:
    """The optimizer's slots as "optimizer/layer/param/slot" arrays, once it has taken a step."""
    optimizer = model.optimizer
    if not optimizer.iterations or not optimizer.is_built_for([model.flat.params]):
        return {}
    return {f"{OPTIMIZER_PREFIX}{name}/{slot}": view
            for slot, flat in optimizer.slots[0].items() for name, view in model.flat.param_views(flat).items()}


def load_model(filepath: str | os.PathLike, from_config: Callable[[dict[str, Any]], SavableModel], *,
               budget: Budget | None = None) -> Any:
    """Rebuild the model saved at ``filepath`` with ``from_config`` (``models.model_from_config``; a model
    class, whose ``from_config`` is then used, works too).

    Nothing is built or read before the file has been checked against ``budget`` (default ``DEFAULT_BUDGET``):
    its zip directory and array headers (``NpzArchive``), its config (``model_config.check``: every entry,
    and the shapes the layers would create, computed without creating them) and that its arrays are exactly
    the ones the config implies. Then the model is built, and each array read into it, one at a time, checked
    to hold finite values (and, for variances and squared-gradient averages, non-negative ones). Raises
    ModelFileError naming the file and what was wrong.
    """
    budget = budget or DEFAULT_BUDGET
    target = resolve_path(filepath, for_writing=False)
    with _open(target, budget) as archive:
        config = _read_config(archive, target, budget)
        try:
            expected = model_config.check(config, budget)
            _check_arrays(archive, expected)
            return _rebuild(from_config, config, archive, expected)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError) as error:
            detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
            raise ModelFileError(f"{target}: invalid model file ({detail})") from None


def _check_arrays(archive: NpzArchive, expected: model_config.Expected) -> None:
    """The file's arrays are exactly the expected weights (and all the optimizer slots, or none), each of
    the expected shape and a float dtype."""
    keys = set(archive.headers) - {CONFIG_KEY}
    others = keys - expected.weights.keys()  # a layer may be named "optimizer": keys are sorted by what they are
    slots = others & expected.slots.keys()
    stray = sorted(key for key in others - slots if not key.startswith(OPTIMIZER_PREFIX))
    missing = sorted(expected.weights.keys() - keys)
    if missing or stray:
        raise ValueError(f"weights: weights do not match the model (missing: {missing[:10] or 'none'}; "
                         f"unexpected: {stray[:10] or 'none'})")
    if others - slots:
        raise ValueError(f"unexpected optimizer entry {sorted(others - slots)[0]}: the optimizer keeps "
                         f"{', '.join(sorted({key.rsplit('/', 1)[1] for key in expected.slots})) or 'no slots'} "
                         f"for {', '.join(sorted(expected.weights)[:10])}")
    missing = sorted(expected.slots.keys() - slots)
    if slots and missing:
        raise ValueError(f"optimizer entries missing: {', '.join(missing[:10])} (a file holds every slot or none)")
    for key in keys:
        header, shape = archive.headers[key], {**expected.weights, **expected.slots}[key]
        if header.shape != shape:
            raise ValueError(f"shape mismatch for {key}: model expects {shape}, got {header.shape}")
        if header.dtype.kind != "f" or header.dtype.itemsize not in WEIGHT_ITEM_SIZES:
            raise ValueError(f"{key} is {header.dtype}; expected float32 or float64")


class _ArraysFromFile(Mapping):
    """The file's arrays by key, each read when asked for: weights are copied into the model one at a time."""

    def __init__(self, archive: NpzArchive, keys: Iterable[str]) -> None:
        self._archive, self._keys = archive, tuple(keys)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        return self._archive.read(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _rebuild(from_config: Callable[[dict[str, Any]], SavableModel], config: dict[str, Any], archive: NpzArchive,
             expected: model_config.Expected) -> Any:
    model = getattr(from_config, "from_config", from_config)(config["model"])
    model.set_named_weights(_ArraysFromFile(archive, expected.weights), source="weights")
    model.labels = as_labels(config.get("labels"))
    model.preprocessing = config.get("preprocessing")
    model.training_split = config.get("training_split")
    if config.get("history"):
        model.history = History()
        model.history.history = {key: list(values) for key, values in config["history"].items()}
    if config.get("rng_state"):  # shuffling and dropout resume exactly where the saved run stopped
        model.rng.bit_generator.state = config["rng_state"]
    compile_config = config.get("compile")
    if compile_config:
        loss = losses_module.REGISTRY[compile_config["loss"]](**compile_config.get("loss_config", {}))
        optimizer = "adam"
        if "optimizer" in compile_config:
            spec = compile_config["optimizer"]
            optimizer = optimizers_module.REGISTRY[spec["class_name"]].from_config(spec["config"])
        model.compile(optimizer=optimizer, loss=loss, metrics=compile_config.get("metrics"))
        if "optimizer" in compile_config:
            model.optimizer.iterations = int(compile_config["optimizer"].get("iterations", 0))
            _restore_slots(model, archive, expected)
    return model


def _restore_slots(model: SavableModel, archive: NpzArchive, expected: model_config.Expected) -> None:
    """Copy the file's "optimizer/layer/param/slot" arrays into the optimizer's slots (compile bound it)."""
    bound = model.optimizer.slots[0] if model.optimizer.slots else {}
    views = {slot: model.flat.param_views(flat) for slot, flat in bound.items()}
    for key in sorted(set(archive.headers) & expected.slots.keys()):
        name, slot = key[len(OPTIMIZER_PREFIX):].rsplit("/", 1)
        value = archive.read(key)
        if not np.isfinite(value).all():
            raise ValueError(f"{key} must hold finite floating-point values")
        if slot in expected.non_negative_slots and (value < 0).any():
            raise ValueError(f"{key} must hold values >= 0 (it accumulates squared gradients). "
                             f"Received a minimum of {value.min()}")
        views[slot][name][...] = value
