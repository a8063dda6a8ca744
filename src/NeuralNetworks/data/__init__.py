"""Datasets as uint8 image arrays: the built-in shapes doodles, MNIST, Fashion-MNIST and Quick, Draw!.

Usage::

    from NeuralNetworks import data
    dataset = data.load("shapes")                     # generated offline, deterministic for a seed
    dataset = data.load("mnist", "datasets/mnist")    # mnist.npz or the four IDX files
    dataset.x_train.shape, dataset.y_train.shape      # (60000, 28, 28, 1) uint8, (60000,) int64

Every loader returns a ``Dataset`` and raises ``DataError`` (a ValueError) for a missing or malformed file.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from .errors import DataError, DownloadError
from .mnist import load_fashion_mnist, load_idx_pair, load_mnist
from .quickdraw import list_classes, load_quickdraw
from .shapes import CLASS_NAMES as SHAPE_CLASSES
from .shapes import load_shapes
from .splits import Dataset, one_hot

DEFAULT_DATASET = "shapes"
DATASETS_FOLDER = "datasets"  # relative to the current directory: datasets/<name>
DATASETS = ("shapes", "mnist", "fashion-mnist", "quickdraw")
ALIASES = {"doodle": "quickdraw", "doodles": "quickdraw", "fashion": "fashion-mnist"}
_LOADERS = {"shapes": load_shapes, "mnist": load_mnist, "fashion-mnist": load_fashion_mnist,
            "quickdraw": load_quickdraw}


def dataset_name(name: str) -> str:
    """The canonical name of a dataset ("Fashion_MNIST" -> "fashion-mnist", "doodle" -> "quickdraw")."""
    if not isinstance(name, str):
        raise TypeError(f"A dataset name must be a string. Received: {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in _LOADERS:
        raise ValueError(f"Unknown dataset {name!r}. Expected one of: {', '.join(DATASETS)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return key


def default_data_dir(name: str) -> Path | None:
    """Where ``load`` looks when no folder is given: ``datasets/<name>`` (``datasets/doodle`` for "doodle")."""
    canonical = dataset_name(name)
    if canonical == "shapes":
        return None
    folder = "doodle" if name.strip().lower() in ("doodle", "doodles") else canonical
    return Path(DATASETS_FOLDER) / folder


def load(name: str = DEFAULT_DATASET, data_dir: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """Load a dataset by name; ``options`` go to its loader (e.g. ``classes``, ``max_per_class``, ``seed``).

    ``test_only=True`` is accepted by every loader: the train arrays come back empty and, for the file-based
    sets, the training files are not even looked for (the Fashion-MNIST copy here only has its test files).
    """
    canonical = dataset_name(name)
    loader = _LOADERS[canonical]
    accepted = [parameter for parameter in inspect.signature(loader).parameters
                if parameter not in ("data_dir", "name")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"The {canonical} dataset does not take option(s) {', '.join(unknown)}; "
                         f"it takes: {', '.join(accepted)}")
    if canonical == "shapes":
        if data_dir is not None:
            raise ValueError(f"The shapes dataset is generated, it reads no files. Received: data_dir={data_dir!r}")
        return loader(**options)
    folder = default_data_dir(name) if data_dir is None else Path(data_dir)
    if canonical == "quickdraw":
        options.setdefault("name", "doodle" if name.strip().lower() in ("doodle", "doodles") else "quickdraw")
    return loader(folder, **options)


__all__ = [
    "DATASETS", "DEFAULT_DATASET", "SHAPE_CLASSES", "DataError", "Dataset", "DownloadError", "dataset_name",
    "default_data_dir", "list_classes", "load", "load_fashion_mnist", "load_idx_pair", "load_mnist",
    "load_quickdraw", "load_shapes", "one_hot",
]
