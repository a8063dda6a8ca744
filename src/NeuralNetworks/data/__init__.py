"""Datasets as uint8 image arrays: the built-in shapes doodles, MNIST, Fashion-MNIST and Quick, Draw!.

Usage::

    from NeuralNetworks import data
    dataset = data.load("shapes")                     # generated offline, deterministic for a seed
    dataset = data.load("mnist", "datasets/mnist")    # mnist.npz or the four IDX files
    dataset.x_train.shape, dataset.y_train.shape      # (60000, 28, 28, 1) uint8, (60000,) int64
    mine = data.load("folder", data_dir="photos")     # your images, one subfolder per class (data.folder)
    table = data.load("csv", path="houses.csv", target="price")  # your table (data.table): a TableDataset

A large QuickDraw folder is streamed instead of loaded: ``data.stream("quickdraw", folder)`` returns a
``StreamedDataset`` whose splits ``fit`` reads batch by batch from the files.

Every loader returns a ``Dataset`` and raises ``DataError`` (a ValueError) for a missing or malformed file.
Each dataset's names, default folder, preprocessing style, loader and downloader are listed once, in
``catalog.CATALOG``: ``load``, ``download``, the command line and ``python -m NeuralNetworks.run`` read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import catalog
from .catalog import CATALOG, DatasetSpec
from .errors import ClassCountError, DataError, DownloadError
from .mnist import load_fashion_mnist, load_idx_pair, load_mnist
from .quickdraw import list_classes, load_quickdraw
from .shapes import CLASS_NAMES as SHAPE_CLASSES
from .shapes import load_shapes
from .splits import Dataset, one_hot, require_classes
from .streaming import StreamedDataset, stream_quickdraw

DEFAULT_DATASET = "shapes"
DATASETS = tuple(CATALOG)


def dataset_name(name: str) -> str:
    """The canonical name of a dataset ("Fashion_MNIST" -> "fashion-mnist", "doodle" -> "quickdraw")."""
    return catalog.find(name).name


def default_data_dir(name: str) -> Path | None:
    """Where ``load`` looks when no folder is given: ``datasets/<name>`` (``datasets/doodle`` for "doodle")."""
    return catalog.find(name).folder(alias=name)


def load(name: str = DEFAULT_DATASET, data_dir: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """Load a dataset by name; ``options`` go to its loader (e.g. ``classes``, ``max_per_class``, ``seed``).

    ``test_only=True`` is accepted by every loader: the train arrays come back empty and, for the file-based
    sets, the training files are not even looked for (the Fashion-MNIST copy here only has its test files).
    The ``Dataset`` carries the catalog's ``preprocessing`` style for its images.
    """
    return catalog.find(name).load(data_dir, alias=name, **options)


def stream(name: str = "quickdraw", data_dir: str | os.PathLike | None = None, **options: Any) -> StreamedDataset:
    """Open a dataset for streaming (QuickDraw): its ``train``, ``validation`` and ``test`` splits are read from
    the class files batch by batch, so a folder of any size trains in bounded memory. ``options`` go to
    its streamer (``classes``, ``max_per_class``, ``test_fraction``, ``validation_fraction``, ``seed``)."""
    return catalog.find(name).stream(data_dir, alias=name, **options)


__all__ = [
    "CATALOG", "DATASETS", "DEFAULT_DATASET", "SHAPE_CLASSES", "ClassCountError", "DataError", "Dataset", "DatasetSpec",
    "DownloadError", "StreamedDataset", "dataset_name", "default_data_dir", "list_classes", "load",
    "load_fashion_mnist", "load_idx_pair", "load_mnist", "load_quickdraw", "load_shapes", "one_hot", "require_classes",
    "stream",
    "stream_quickdraw",
]
