"""MNIST and Fashion-MNIST from Keras' ``mnist.npz`` or the four IDX files (gzipped or not).

IDX layout (http://yann.lecun.com/exdb/mnist/): a big-endian uint32 magic ``0x000008DD`` (``08`` = unsigned
bytes, ``DD`` = number of dimensions: 0x803 for images, 0x801 for labels), one big-endian uint32 per dimension,
then the raw uint8 data in row-major order. Every inconsistency raises ``DataError`` naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

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
    view, filled = memoryview(buffer).cast("B"), 0
    while filled < len(view):
        got = stream.readinto(view[filled:filled + READ_CHUNK_BYTES])
        if not got:
            break
        filled += got
    return filled


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        compressed = probe.read(len(GZIP_SIGNATURE)) == GZIP_SIGNATURE
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # the caller closes it


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped or raw) into an array of the shape its header gives.

    ``expected_magic`` (``IDX_IMAGES_MAGIC`` or ``IDX_LABELS_MAGIC``) is checked when given. The data must be
    exactly as long as the header announces: a truncated file or trailing bytes raise ``DataError``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with _open(path) as stream:
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
            dims = tuple(int.from_bytes(dims_bytes[i:i + HEADER_WORD_BYTES], "big")
                         for i in range(0, len(dims_bytes), HEADER_WORD_BYTES))
            expected_bytes = math.prod(dims)
            data = np.empty(dims, dtype=np.uint8)
            got = _read_into(stream, data)
            shape_text = "x".join(map(str, dims))
            if got < expected_bytes:
                raise DataError(f"{path}: truncated, the header announces {shape_text} = {expected_bytes} bytes of "
                                f"data but the file holds {got}")
            if stream.read(1):
                raise DataError(f"{path}: trailing bytes after the {expected_bytes} bytes of data the header "
                                f"announces ({shape_text})")
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: unreadable or corrupt file ({error})") from None
    return data


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read an IDX image file and its label file: uint8 ``(N, rows, cols, 1)`` and int64 ``(N,)``.

    Useful on its own when a folder only holds one split (the Fashion-MNIST test set, say).
    ``num_classes``, when given, is checked against the largest label.
    """
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected 3 dimensions (count, rows, cols), the header gives {images.shape}")
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


def _load_idx_split(data_dir: Path, split: str, dataset: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    stems = list(SPLIT_FILES[split])
    paths = [find_idx_file(data_dir, stem) for stem in stems]
    missing = [stem for stem, path in zip(stems, paths, strict=True) if path is None]
    if missing:
        hint = ""
        if split == "train" and len(missing) == len(stems):
            hint = " Only the test files are there: load them with test_only=True (CLI: the test command)."
        raise DataError(_missing_files_message(data_dir, missing, dataset, hint))
    return load_idx_pair(paths[0], paths[1], num_classes)


def _empty_split(image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((0, *image_shape), dtype=np.uint8), np.empty(0, dtype=LABEL_DTYPE)


def load_idx_dataset(
    data_dir: str | os.PathLike, name: str, label_names: list[str], *, test_only: bool = False
) -> Dataset:
    """A ``Dataset`` from the four standard IDX files in ``data_dir`` (only the two t10k files if ``test_only``)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: {name} folder not found (download it with `NeuralNetworks download {name}`)")
    x_test, y_test = _load_idx_split(data_dir, "test", name, len(label_names))
    if test_only:
        x_train, y_train = _empty_split(x_test.shape[1:])
    else:
        x_train, y_train = _load_idx_split(data_dir, "train", name, len(label_names))
    return Dataset(x_train, y_train, x_test, y_test, label_dict=dict(enumerate(label_names)), name=name)


def load_mnist_npz(path: str | os.PathLike, *, test_only: bool = False) -> Dataset:
    """MNIST from Keras' ``mnist.npz`` (arrays ``x_train, y_train, x_test, y_test``), read without pickle."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    keys = NPZ_KEYS[2:] if test_only else NPZ_KEYS
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected {', '.join(NPZ_KEYS)}")
            arrays = {key: archive[key] for key in keys}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz archive of plain arrays ({error})") from None
    splits = {}
    for split in ("train", "test"):
        if test_only and split == "train":
            continue
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} is {images.dtype} of shape {images.shape}, "
                            "expected uint8 of shape (N, 28, 28)")
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{path}: y_{split} is {labels.dtype} of shape {labels.shape}, "
                            f"expected integers of shape ({len(images)},)")
        if labels.size and (labels.min() < 0 or labels.max() >= len(MNIST_LABELS)):
            raise DataError(f"{path}: y_{split} holds labels outside 0..{len(MNIST_LABELS) - 1}")
        splits[split] = (images[..., np.newaxis], labels.astype(LABEL_DTYPE))
    x_test, y_test = splits["test"]
    x_train, y_train = splits.get("train") or _empty_split(x_test.shape[1:])
    return Dataset(x_train, y_train, x_test, y_test, label_dict=dict(enumerate(MNIST_LABELS)), name="mnist")


def load_mnist(data_dir: str | os.PathLike, *, test_only: bool = False) -> Dataset:
    """MNIST from ``data_dir``: a ``mnist.npz`` file, a folder holding one, or a folder of the four IDX files."""
    data_dir = Path(data_dir)
    if data_dir.suffix == ".npz" or (data_dir / NPZ_NAME).is_file():
        return load_mnist_npz(data_dir if data_dir.suffix == ".npz" else data_dir / NPZ_NAME, test_only=test_only)
    if data_dir.is_dir() and not any(find_idx_file(data_dir, stem) for stems in SPLIT_FILES.values()
                                     for stem in stems):
        names = ", ".join(f"{stem}[.gz]" for stems in SPLIT_FILES.values() for stem in stems)
        raise DataError(f"{data_dir}: no MNIST files found; looked for {NPZ_NAME} or the IDX files {names} "
                        "(download them with `NeuralNetworks download mnist`)")
    return load_idx_dataset(data_dir, "mnist", MNIST_LABELS, test_only=test_only)


def load_fashion_mnist(data_dir: str | os.PathLike, *, test_only: bool = False) -> Dataset:
    """Fashion-MNIST from the four IDX files (same names as MNIST's) in ``data_dir``."""
    return load_idx_dataset(data_dir, "fashion-mnist", FASHION_MNIST_LABELS, test_only=test_only)
