"""The model file: one ``.npz`` with a JSON config and one array per "layer/param"; never pickle.

``__config__`` is UTF-8 JSON stored as a uint8 array: the format version, each layer's class name and config,
the input shape, dtype, labels and the compile settings. Every other entry is a weight named
"layer_name/param_name" (or a non-trainable state array such as a moving mean). The file is written to a
temporary name in the same folder and ``os.replace``d into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .models import Sequential

FORMAT_NAME = "NeuralNetworks.Sequential"
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
DEFAULT_FILENAME = "model.npz"
SUFFIX = ".npz"
ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive and starts with this local-file header


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


def load_model(path: str | os.PathLike) -> Sequential:
    """Rebuild the Sequential saved at ``path``: layers through the registry, weights checked against them."""
    path, config, arrays = read(path)
    try:
        return _from_file_config(config, arrays)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise ModelFileError(f"{path}: invalid model file ({detail})") from None


def _from_file_config(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Sequential:
    from . import losses as losses_module
    from . import optimizers as optimizers_module
    from .layers import REGISTRY as LAYER_REGISTRY
    from .models import Sequential, _as_labels  # models imports this module: import it when called

    spec = config["model"]
    model = Sequential(name=spec["name"], dtype=spec["dtype"], seed=spec.get("seed"))
    for entry in spec["layers"]:
        cls = LAYER_REGISTRY.get(entry["class_name"])
        if cls is None:
            raise ValueError(f"unknown layer class {entry['class_name']!r}; known: {', '.join(LAYER_REGISTRY)}")
        model.add(cls.from_config(entry["config"]))
    if spec.get("input_shape") is not None and not model.built:
        model.build(spec["input_shape"])
    optimizer_arrays = {k: v for k, v in arrays.items() if k.startswith("optimizer/")}
    model.set_weights({k: v for k, v in arrays.items() if k not in optimizer_arrays}, source="weights")
    model.labels = _as_labels(config.get("labels"))
    model.preprocessing = config.get("preprocessing")
    if config.get("rng_state"):  # shuffling and dropout resume exactly where the saved run stopped
        model.rng.bit_generator.state = config["rng_state"]
    compile_config = config.get("compile")
    if compile_config:
        loss = losses_module.REGISTRY[compile_config["loss"]](**compile_config.get("loss_config", {}))
        optimizer = "adam"
        if "optimizer" in compile_config:
            spec_opt = compile_config["optimizer"]
            optimizer = optimizers_module.REGISTRY[spec_opt["class_name"]].from_config(spec_opt["config"])
            optimizer.iterations = int(spec_opt.get("iterations", 0))
            for key, value in optimizer_arrays.items():
                param_key, slot = key[len("optimizer/"):].rsplit("/", 1)
                optimizer.slots.setdefault(param_key, {})[slot] = value.astype(model.dtype)
        model.compile(optimizer=optimizer, loss=loss, metrics=compile_config.get("metrics"))
    return model
