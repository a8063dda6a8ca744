"""The model file: one ``.npz`` with a JSON config and one array per "layer/param"; never pickle.

``__config__`` is UTF-8 JSON stored as a uint8 array: the format version, each layer's class name and config,
the input shape, dtype, labels and the compile settings. Every other entry is a weight named
"layer_name/param_name" (or a non-trainable state array such as a moving mean), or an optimizer slot named
"optimizer/layer_name/param_name/slot_name". The file is written to a temporary name in the same folder and
``os.replace``d into place, so a crash never leaves half a model.

``save_model(model, filepath)`` and ``load_model(filepath, model_class)`` are the pair; ``write`` and ``read``
are the file level beneath them. This module uses only the public API of the model and is imported by
``models``, so the class to rebuild is passed in (``models.load`` passes ``Sequential``).
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from . import losses as losses_module
from . import optimizers as optimizers_module
from ._inputs import as_labels
from .activations import NotSerializableError

FORMAT_NAME = "NeuralNetworks.Sequential"
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
DEFAULT_FILENAME = "model.npz"
SUFFIX = ".npz"
ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive and starts with this local-file header
OPTIMIZER_PREFIX = "optimizer/"

Model = TypeVar("Model", bound="SavableModel")


class SavableModel(Protocol):
    """What this module reads and sets on a model: the public API of ``models.Sequential``."""

    built: bool
    labels: dict[int, str] | None
    preprocessing: str | None
    rng: np.random.Generator
    optimizer: Any
    loss: Any
    metrics: list
    flat: Any

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any: ...
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
    """Atomically write ``config`` and ``arrays`` to the model file at ``path``; return the final path."""
    target = resolve_path(path, for_writing=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {CONFIG_KEY: np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)}
    for key, value in arrays.items():
        if key == CONFIG_KEY:
            raise ValueError(f"{CONFIG_KEY!r} is reserved and cannot name a weight")
        payload[key] = value
    tmp_name = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with mode 0o666 honours the umask, so the model gets ordinary permissions (mkstemp would give 0600).
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def read(path: str | os.PathLike) -> tuple[Path, dict[str, Any], dict[str, np.ndarray]]:
    """Read a model file without pickle; raise ModelFileError naming the file and what was wrong."""
    target = resolve_path(path, for_writing=False)
    if not target.is_file():
        raise ModelFileError(f"{target}: no such model file")
    with open(target, "rb") as handle:
        if handle.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise ModelFileError(f"{target}: not a NeuralNetworks model file (expected a .npz archive)")
    try:
        with np.load(target, allow_pickle=False) as archive:
            if CONFIG_KEY not in archive.files:
                raise ModelFileError(f"{target}: not a NeuralNetworks model file (it has no {CONFIG_KEY!r} entry)")
            arrays = {key: archive[key] for key in archive.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise ModelFileError(
            f"{target}: not a readable NeuralNetworks model file (expected a .npz archive; {error})"
        ) from None
    raw = arrays.pop(CONFIG_KEY)
    try:
        config = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{target}: the model's {CONFIG_KEY} is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{target}: not a NeuralNetworks model file (format is not {FORMAT_NAME!r})")
    if config.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{target}: model format version {config.get('version')!r} is not supported "
            f"(this library reads version {FORMAT_VERSION})"
        )
    return target, config, arrays


def save_model(model: SavableModel, filepath: str | os.PathLike, *, include_optimizer: bool = True) -> Path:
    """Write ``model`` (architecture, weights, labels, compile settings and, with ``include_optimizer``, the
    optimizer's state so that training resumes exactly) to one file, atomically; return the path written."""
    if not model.built:
        raise RuntimeError("Cannot save a model that is not built: fit it or give input_shape first")
    try:
        architecture = model.get_config()
    except NotSerializableError as error:
        raise NotSerializableError(f"Cannot save the model to {filepath}: {error}") from None
    config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "model": architecture,
              "labels": None if model.labels is None else {str(k): v for k, v in model.labels.items()},
              "preprocessing": model.preprocessing,
              "rng_state": model.rng.bit_generator.state}
    arrays = model.get_named_weights()
    if model.loss is not None:
        config["compile"] = {"loss": type(model.loss).__name__, "loss_config": model.loss.get_config(),
                             "metrics": [name for name, _ in model.metrics]}
        optimizer = model.optimizer
        if include_optimizer and optimizer is not None:
            config["compile"]["optimizer"] = {"class_name": type(optimizer).__name__,
                                              "config": optimizer.get_config(), "iterations": optimizer.iterations}
            arrays.update(_optimizer_slots(model))
    return write(filepath, config, arrays)


def _optimizer_slots(model: SavableModel) -> dict[str, np.ndarray]:
    """The optimizer's slots as "optimizer/layer/param/slot" arrays, once it has taken a step."""
    optimizer = model.optimizer
    if not optimizer.iterations or not optimizer.is_built_for([model.flat.params]):
        return {}
    return {f"{OPTIMIZER_PREFIX}{name}/{slot}": view
            for slot, flat in optimizer.slots[0].items() for name, view in model.flat.param_views(flat).items()}


def load_model(filepath: str | os.PathLike, model_class: type[Model]) -> Model:
    """Rebuild the model saved at ``filepath`` as a ``model_class`` (``models.Sequential``): layers through the
    layer registry, weights checked against them; raise ModelFileError naming the file and what was wrong."""
    path, config, arrays = read(filepath)
    try:
        return _rebuild(model_class, config, arrays)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise ModelFileError(f"{path}: invalid model file ({detail})") from None


def _rebuild(model_class: type[Model], config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
    model = model_class.from_config(config["model"])
    slots = {k[len(OPTIMIZER_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIMIZER_PREFIX)}
    model.set_named_weights({k: v for k, v in arrays.items() if not k.startswith(OPTIMIZER_PREFIX)},
                            source="weights")
    model.labels = as_labels(config.get("labels"))
    model.preprocessing = config.get("preprocessing")
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
            _restore_slots(model, slots)
    return model


def _restore_slots(model: SavableModel, slots: dict[str, np.ndarray]) -> None:
    """Copy saved "layer/param/slot" arrays into the optimizer's slots (compile bound it to the model)."""
    bound = model.optimizer.slots[0] if model.optimizer.slots else {}
    views = {slot: model.flat.param_views(flat) for slot, flat in bound.items()}
    for key, value in slots.items():
        name, slot = key.rsplit("/", 1)
        target = views.get(slot, {}).get(name)
        if target is None:
            raise ValueError(f"unexpected optimizer entry {OPTIMIZER_PREFIX}{key} for a "
                             f"{type(model.optimizer).__name__} over {', '.join(model.flat.param_names)}")
        if value.shape != target.shape:
            raise ValueError(f"shape mismatch for {OPTIMIZER_PREFIX}{key}: model expects {target.shape}, "
                             f"got {value.shape}")
        target[...] = value
