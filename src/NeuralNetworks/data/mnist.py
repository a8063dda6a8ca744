"""MNIST and Fashion-MNIST from Keras' ``mnist.npz`` or the four IDX files (gzipped or not).

IDX layout (http://yann.lecun.com/exdb/mnist/): a big-endian uint32 magic ``0x000008DD`` (``08`` = unsigned
bytes, ``DD`` = number of dimensions: 0x803 for images, 0x801 for labels), one big-endian uint32 per dimension,
then the raw uint8 data in row-major order. Every inconsistency raises ``DataError`` naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .._archive import NpzArchive
from .._files import open_regular
from .._validation import first_line
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from .errors import DataError
from .splits import LABEL_DTYPE, Dataset

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
IDX_UBYTE_TYPE = 0x08
GZIP_SIGNATURE = b"\x1f\x8b"
HEADER_WORD_BYTES = 4
MAX_IDX_DIMENSIONS = 4
READ_CHUNK_BYTES = 1 << 22

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NPZ_NAME = "mnist.npz"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

MNIST_LABELS = [str(digit) for digit in range(10)]
FASHION_MNIST_LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_MAGIC_KIND = {IDX_IMAGES_MAGIC: "IDX images", IDX_LABELS_MAGIC: "IDX labels"}


def accepted_names(stem: str) -> list[str]:
    """File names accepted for an IDX ``stem``: as published, gzipped, and with the dot some unzippers add."""
    dotted = stem.replace("-idx", ".idx")
    return [f"{stem}.gz", stem, f"{dotted}.gz", dotted]


def find_idx_file(data_dir: str | os.PathLike, stem: str) -> Path | None:
    """The first accepted file for ``stem`` in ``data_dir``, or None."""
    for name in accepted_names(stem):
        candidate = Path(data_dir) / name
        if candidate.is_file():
            return candidate
    return None


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_into(stream: BinaryIO, buffer: np.ndarray) -> int:
    """Fill ``buffer`` from ``stream`` without an intermediate copy; return how many bytes were available."""
    if not buffer.size:
        return 0
    view, filled = memoryview(buffer).cast("B"), 0
    while filled < len(view):
        got = stream.readinto(view[filled:filled + READ_CHUNK_BYTES])
        if not got:
            break
        filled += got
    return filled


def read_idx(path: str | os.PathLike, expected_magic: int | None = None, *,
             budget: Budget | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped or raw) into an array of the shape its header gives.

    ``expected_magic`` (``IDX_IMAGES_MAGIC`` or ``IDX_LABELS_MAGIC``) is checked when given. The header's claim
    is held to the ``budget`` (and, uncompressed, to the file's size) before anything is allocated; the data must
    be exactly as long as the header announces: a truncated file or trailing bytes raise ``DataError``.
    """
    budget = budget or DEFAULT_BUDGET
    path = Path(path)
    with open_regular(path, DataError, "IDX file") as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            compressed = handle.read(len(GZIP_SIGNATURE)) == GZIP_SIGNATURE
            handle.seek(0)
            with gzip.GzipFile(fileobj=handle, mode="rb") if compressed else contextlib.nullcontext(handle) as stream:
                dims = _idx_header(stream, path, expected_magic)
                shape_text = "x".join(map(str, dims))
                expected_bytes = math.prod(dims)
                _check_claim(path, shape_text, expected_bytes, size, compressed, budget, len(dims))
                data = np.empty(dims, dtype=np.uint8)  # pages are touched only as data arrives
                got = _read_into(stream, data)
                if got < expected_bytes:
                    raise DataError(f"{path}: truncated, the header announces {shape_text} = {expected_bytes} bytes "
                                    f"of data but the file holds {got}")
                if stream.read(1):
                    raise DataError(f"{path}: trailing bytes after the {expected_bytes} bytes of data the header "
                                    f"announces ({shape_text})")
        except DataError:
            raise
        except Exception as error:  # gzip/zlib on a damaged stream: BadGzipFile, zlib.error, EOFError, ...
            raise DataError(f"{path}: unreadable or corrupt file ({first_line(error)})") from None
    return data


def _idx_header(stream: BinaryIO, path: Path, expected_magic: int | None) -> tuple[int, ...]:
    """The dimension sizes an IDX header announces, after checking its magic number."""
    header = _read_exactly(stream, HEADER_WORD_BYTES)
    if len(header) < HEADER_WORD_BYTES:
        raise DataError(f"{path}: file ends inside the IDX header ({len(header)} bytes)")
    magic = int.from_bytes(header, "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"({_MAGIC_KIND.get(expected_magic, 'IDX')})")
    ndim, data_type = magic & 0xFF, (magic >> 8) & 0xFF
    if magic >> 16 or data_type != IDX_UBYTE_TYPE or not 1 <= ndim <= MAX_IDX_DIMENSIONS:
        raise DataError(f"{path}: bad magic number 0x{magic:08x}, expected 0x000008NN "
                        f"(IDX unsigned bytes, NN = 1..{MAX_IDX_DIMENSIONS} dimensions)")
    dims_bytes = _read_exactly(stream, HEADER_WORD_BYTES * ndim)
    if len(dims_bytes) < HEADER_WORD_BYTES * ndim:
        raise DataError(f"{path}: file ends inside the IDX header (expected {ndim} dimension sizes)")
    return tuple(int.from_bytes(dims_bytes[i:i + HEADER_WORD_BYTES], "big")
                 for i in range(0, len(dims_bytes), HEADER_WORD_BYTES))


def _check_claim(path: Path, shape_text: str, expected_bytes: int, size: int, compressed: bool, budget: Budget,
                 ndim: int) -> None:
    """Refuse a header whose data could not be in the file, or would exceed the budget, before allocating."""
    if expected_bytes > budget.max_dataset_bytes:
        raise DataError(f"{path}: the header announces {shape_text} = {bytes_text(expected_bytes)} of data, more "
                        f"than the budget's max_dataset_bytes ({bytes_text(budget.max_dataset_bytes)})")
    if not compressed and expected_bytes > size - HEADER_WORD_BYTES * (1 + ndim):
        raise DataError(f"{path}: truncated, the header announces {shape_text} = {expected_bytes} bytes of data "
                        f"but the file holds {max(size - HEADER_WORD_BYTES * (1 + ndim), 0)}")
    if compressed and expected_bytes > budget.inflation_limit(size):
        raise DataError(f"{path}: {bytes_text(size)} of gzip data whose header announces "
                        f"{bytes_text(expected_bytes)} (a decompression bomb?); the budget allows "
                        f"{budget.max_inflation_ratio}x past "
                        f"{bytes_text(budget.inflation_floor_bytes)} (max_inflation_ratio)")


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, num_classes: int | None = None, *,
    budget: Budget | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an IDX image file and its label file: uint8 ``(N, rows, cols, 1)`` and int64 ``(N,)``.

    Useful on its own when a folder only holds one split (the Fashion-MNIST test set, say).
    ``num_classes``, when given, is checked against the largest label.
    """
    images = read_idx(images_path, IDX_IMAGES_MAGIC, budget=budget)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC, budget=budget)
    if images.ndim != 3 or not images.size:
        raise DataError(f"{images_path}: expected 3 dimensions (count, rows, cols), none of them 0; the header gives "
                        f"{images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected 1 dimension (count), the header gives {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise DataError(f"{labels_path}: label {labels.max()} outside the expected 0..{num_classes - 1}")
    return images[..., np.newaxis], labels.astype(LABEL_DTYPE)


def _missing_files_message(data_dir: Path, stems: list[str], dataset: str, hint: str) -> str:
    wanted = "; ".join(f"{stem} (accepted: {', '.join(accepted_names(stem))})" for stem in stems)
    return f"{data_dir}: missing {dataset} file(s) {wanted}.{hint}"


def _load_idx_split(data_dir: Path, split: str, dataset: str, num_classes: int,
                    budget: Budget | None) -> tuple[np.ndarray, np.ndarray]:
    stems = list(SPLIT_FILES[split])
    paths = [find_idx_file(data_dir, stem) for stem in stems]
    missing = [stem for stem, path in zip(stems, paths, strict=True) if path is None]
    if missing:
        hint = ""
        if split == "train" and len(missing) == len(stems):
            hint = " Only the test files are there: load them with test_only=True (CLI: the test command)."
        raise DataError(_missing_files_message(data_dir, missing, dataset, hint))
    return load_idx_pair(paths[0], paths[1], num_classes, budget=budget)


def _empty_split(image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((0, *image_shape), dtype=np.uint8), np.empty(0, dtype=LABEL_DTYPE)


def load_idx_dataset(
    data_dir: str | os.PathLike, name: str, label_names: list[str], *, test_only: bool = False,
    budget: Budget | None = None,
) -> Dataset:
    """A ``Dataset`` from the four standard IDX files in ``data_dir`` (only the two t10k files if ``test_only``)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: {name} folder not found (download it with `NeuralNetworks download {name}`)")
    x_test, y_test = _load_idx_split(data_dir, "test", name, len(label_names), budget)
    if test_only:
        x_train, y_train = _empty_split(x_test.shape[1:])
    else:
        x_train, y_train = _load_idx_split(data_dir, "train", name, len(label_names), budget)
    return Dataset(x_train, y_train, x_test, y_test, label_dict=dict(enumerate(label_names)), name=name)


def load_mnist_npz(path: str | os.PathLike, *, test_only: bool = False, budget: Budget | None = None) -> Dataset:
    """MNIST from Keras' ``mnist.npz`` (arrays ``x_train, y_train, x_test, y_test``), read without pickle, its
    headers checked against the ``budget`` before any array is read."""
    budget = budget or DEFAULT_BUDGET
    path = Path(path)
    keys = NPZ_KEYS[2:] if test_only else NPZ_KEYS
    with NpzArchive(path, budget, DataError, kind=".npz archive of plain arrays", what="file",
                    max_bytes=budget.max_dataset_bytes, limit_name="max_dataset_bytes") as archive:
        missing = [key for key in keys if key not in archive.headers]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected {', '.join(NPZ_KEYS)}")
        for split in ("test",) if test_only else ("train", "test"):
            images, labels = archive.headers[f"x_{split}"], archive.headers[f"y_{split}"]
            if len(images.shape) != 3 or images.dtype != np.uint8 or not all(images.shape):
                raise DataError(f"{path}: x_{split} is {images.dtype} of shape {images.shape}, "
                                "expected uint8 of shape (N, 28, 28)")
            if labels.shape != images.shape[:1] or labels.dtype.kind not in "iu":
                raise DataError(f"{path}: y_{split} is {labels.dtype} of shape {labels.shape}, "
                                f"expected integers of shape ({images.shape[0]},)")
        arrays = {key: archive.read(key) for key in keys}
    splits = {}
    for split in ("train", "test"):
        if test_only and split == "train":
            continue
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if labels.size and (labels.min() < 0 or labels.max() >= len(MNIST_LABELS)):
            raise DataError(f"{path}: y_{split} holds labels outside 0..{len(MNIST_LABELS) - 1}")
        splits[split] = (images[..., np.newaxis], labels.astype(LABEL_DTYPE))
    x_test, y_test = splits["test"]
    x_train, y_train = splits.get("train") or _empty_split(x_test.shape[1:])
    return Dataset(x_train, y_train, x_test, y_test, label_dict=dict(enumerate(MNIST_LABELS)), name="mnist")


def load_mnist(data_dir: str | os.PathLike, *, test_only: bool = False, budget: Budget | None = None) -> Dataset:
    """MNIST from ``data_dir``: a ``mnist.npz`` file, a folder holding one, or a folder of the four IDX files."""
    data_dir = Path(data_dir)
    if data_dir.suffix == ".npz" or (data_dir / NPZ_NAME).is_file():
        return load_mnist_npz(data_dir if data_dir.suffix == ".npz" else data_dir / NPZ_NAME, test_only=test_only,
                              budget=budget)
    if data_dir.is_dir() and not any(find_idx_file(data_dir, stem) for stems in SPLIT_FILES.values()
                                     for stem in stems):
        names = ", ".join(f"{stem}[.gz]" for stems in SPLIT_FILES.values() for stem in stems)
        raise DataError(f"{data_dir}: no MNIST files found; looked for {NPZ_NAME} or the IDX files {names} "
                        "(download them with `NeuralNetworks download mnist`)")
    return load_idx_dataset(data_dir, "mnist", MNIST_LABELS, test_only=test_only, budget=budget)


def load_fashion_mnist(data_dir: str | os.PathLike, *, test_only: bool = False,
                       budget: Budget | None = None) -> Dataset:
    """Fashion-MNIST from the four IDX files (same names as MNIST's) in ``data_dir``."""
    return load_idx_dataset(data_dir, "fashion-mnist", FASHION_MNIST_LABELS, test_only=test_only, budget=budget)
