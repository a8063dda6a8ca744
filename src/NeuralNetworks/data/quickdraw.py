"""Quick, Draw! ``numpy_bitmap`` files: a folder of ``<class>.npy`` arrays of shape (N, 784), uint8, one per class.

Google's files are ~100 MB each, so they are memory-mapped: only the rows a caller asks for are read from disk
and copied into the returned arrays. https://github.com/googlecreativelab/quickdraw-dataset#numpy-bitmaps-npy
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import open_regular, require_regular
from .._validation import first_line, non_negative_int, positive_int, printable, real_in_range, safe_name
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from .errors import DataError
from .splits import LABEL_DTYPE, Dataset, shuffled, split_indices

IMAGE_SIDE = 28
BITMAP_PIXELS = IMAGE_SIDE * IMAGE_SIDE
FILE_SUFFIX = ".npy"
DOWNLOAD_PREFIX = "full_numpy_bitmap_"  # the name some download tools give the files; not part of the class
DEFAULT_TEST_FRACTION = 0.2
ALL_CLASSES = "all"  # the `classes` value that picks every class file of the folder


def class_name(path: Path) -> str:
    """The class a file holds: its name without ``.npy`` (and without a ``full_numpy_bitmap_`` prefix)."""
    stem = path.name[: -len(FILE_SUFFIX)]
    return stem[len(DOWNLOAD_PREFIX):] if stem.startswith(DOWNLOAD_PREFIX) else stem


def class_files(data_dir: str | os.PathLike) -> dict[str, Path]:
    """``{class name: file}`` for every ``.npy`` file in ``data_dir``, sorted by class name."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: QuickDraw folder not found (expected a folder of <class>.npy numpy_bitmap "
                        "files; download some with `NeuralNetworks download quickdraw --classes cat dog`)")
    files: dict[str, Path] = {}
    for path in sorted(data_dir.iterdir()):
        if not path.name.endswith(FILE_SUFFIX):
            continue
        class_ = class_name(path)
        if class_ in files:  # cat.npy beside full_numpy_bitmap_cat.npy: which one is meant is not ours to guess
            raise DataError(f"{printable(str(files[class_]))} and {printable(str(path))} both hold class "
                            f"{printable(class_)!r}: keep one of them")
        files[class_] = path
    if not files:
        raise DataError(f"{data_dir}: no <class>.npy files found (expected QuickDraw numpy_bitmap files)")
    return dict(sorted(files.items()))


def list_classes(data_dir: str | os.PathLike) -> list[str]:
    """The class names available in ``data_dir``, sorted."""
    return list(class_files(data_dir))


def open_bitmaps(path: str | os.PathLike) -> np.ndarray:
    """Memory-map one numpy_bitmap file as a read-only (N, 784) uint8 array, checking its header, and that the
    file holds exactly the rows it announces (no more: rows past the header's count would be ignored silently)."""
    path = Path(path)
    require_regular(path, DataError, "QuickDraw file")  # a FIFO would block np.load, a device never end
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # numpy's header parser is not written for hostile input: anything it raises
        raise DataError(f"{path}: not a readable .npy file ({first_line(error)})") from None
    if not isinstance(bitmaps, np.ndarray):  # an .npz archive under a .npy name
        bitmaps.close()
        raise DataError(f"{path}: expected a .npy array of shape (N, {BITMAP_PIXELS}), found an .npz archive")
    if bitmaps.ndim == 3 and bitmaps.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
        bitmaps = bitmaps.reshape(len(bitmaps), BITMAP_PIXELS)
    if bitmaps.ndim != 2 or bitmaps.shape[1] != BITMAP_PIXELS or bitmaps.dtype != np.uint8 or \
            not bitmaps.flags.c_contiguous:
        raise DataError(f"{path}: array is {bitmaps.dtype} of shape {bitmaps.shape}, expected uint8 of shape "
                        f"(N, {BITMAP_PIXELS}) in C order (28x28 numpy_bitmap rows)")
    size = path.stat().st_size
    if size != bitmaps.offset + bitmaps.nbytes:
        raise DataError(f"{path}: the header announces {len(bitmaps)} drawings ({bitmaps.nbytes} bytes) but the file "
                        f"holds {size - bitmaps.offset} bytes after it; the file is damaged or was altered")
    return bitmaps


class BitmapFile:
    """One numpy_bitmap file read row by row with ``pread``, never through a memory map: a file truncated or
    rewritten while a run reads it (its size or modification time changed, a row past its end) raises
    ``DataError`` naming it, where a read from a map of a shrunk file kills the process with SIGBUS."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        bitmaps = open_bitmaps(self.path)  # the header checked, and the size: then the map is dropped unread
        self.rows, self.offset = len(bitmaps), int(bitmaps.offset)
        del bitmaps
        self._descriptor = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        status = os.fstat(self._descriptor)
        self._seen = (status.st_size, status.st_mtime_ns)
        if status.st_size != self.offset + self.rows * BITMAP_PIXELS:
            self.close()
            raise self._changed()

    def __len__(self) -> int:
        return self.rows

    def read(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (in range) as a (len(rows), 784) uint8 array, into ``out`` if given."""
        out = np.empty((len(rows), BITMAP_PIXELS), dtype=np.uint8) if out is None else out
        if self._descriptor < 0:
            raise ValueError(f"{self.path}: read from a closed BitmapFile")
        status = os.fstat(self._descriptor)
        if (status.st_size, status.st_mtime_ns) != self._seen:
            raise self._changed()
        for at, row in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
            if os.preadv(self._descriptor, [out[at]], self.offset + row * BITMAP_PIXELS) != BITMAP_PIXELS:
                raise self._changed()
        return out

    def close(self) -> None:
        """Close the file (once: its descriptor number may be another file's afterwards)."""
        descriptor, self._descriptor = self._descriptor, -1
        if descriptor >= 0:
            os.close(descriptor)

    def _changed(self) -> DataError:
        return DataError(f"{self.path}: the file changed while it was being read (truncated, rewritten or "
                         "replaced); restore it and resume from the last checkpoint")

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            self.close()


def class_rng(seed: int, name: str) -> np.random.Generator:
    """One generator per class, so a class's split does not depend on which other classes were chosen."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def read_class_list(path: Path, budget: Budget = DEFAULT_BUDGET) -> list[str]:
    """The class names in a text file, one per line (blank lines and lines starting with # skipped), sorted.

    The file is read only up to what ``budget.max_labels`` names of ``budget.max_name_chars`` can take."""
    limit = budget.max_labels * (budget.max_name_chars + 1)
    try:
        with open_regular(path, DataError, "list of classes") as handle:
            text = handle.read(limit + 1)
        if len(text) > limit:
            raise DataError(f"{path}: the list of classes is larger than the budget allows "
                            f"({bytes_text(limit)}: max_labels names of max_name_chars characters)")
        lines = text.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the list of classes ({error})") from None
    names = sorted({line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")})
    if not names:
        raise DataError(f"{path}: the list of classes is empty (expected one class name per line)")
    return names


def choose_classes(files: dict[str, Path], classes: Sequence[str] | str | os.PathLike | None,
                   data_dir: str | os.PathLike) -> list[str]:
    """The classes to load, in label order: ``classes`` as given, all of them (None or ``"all"``, sorted), or
    the sorted names listed in a file (``classes`` a path, or a single name that is a file and not a class)."""
    if classes is not None:
        if isinstance(classes, str | os.PathLike):
            classes = [classes]
        chosen = list(dict.fromkeys(os.fspath(name) for name in classes))
        if len(chosen) == 1 and chosen[0] not in files:
            if chosen[0] == ALL_CLASSES:
                classes = None
            elif Path(chosen[0]).is_file():
                chosen = read_class_list(Path(chosen[0]))
    if classes is None:  # every file is a class: its name becomes a label, so it must be a safe name
        for class_, path in files.items():
            try:
                safe_name("load_quickdraw", "class", class_)
            except ValueError as error:
                raise DataError(f"{printable(str(path))}: cannot be a class: {error}; rename the file") from None
        return list(files)
    for class_ in chosen:  # names a user typed, or listed in a file
        safe_name("load_quickdraw", "classes", class_)
    unknown = [name for name in chosen if name not in files]
    if unknown:
        raise DataError(f"{data_dir}: unknown QuickDraw class(es) {', '.join(map(repr, unknown))}; "
                        f"available: {printable(', '.join(files), 2000)}")
    if not chosen:
        raise DataError(f"{data_dir}: `classes` is empty; available: {printable(', '.join(files), 2000)}")
    return chosen


def _counts(files: dict[str, Path], chosen: list[str], max_per_class: int | None, budget: Budget) -> dict[str, int]:
    """Drawings to read per class, from the files' headers; refused if they exceed the budget."""
    counts = {}
    for class_ in chosen:
        bitmaps = open_bitmaps(files[class_])
        counts[class_] = len(bitmaps) if max_per_class is None else min(len(bitmaps), max_per_class)
        del bitmaps  # closes the memory map
        if counts[class_] == 0:
            raise DataError(f"{files[class_]}: holds no drawings")
    total = sum(counts.values()) * BITMAP_PIXELS
    if total > budget.max_dataset_bytes:
        raise DataError(f"{len(chosen)} QuickDraw classes of {sum(counts.values())} drawings take {bytes_text(total)}, "
                        f"more than the budget's max_dataset_bytes ({bytes_text(budget.max_dataset_bytes)}); "
                        "pass max_per_class (CLI: --max-per-class) or fewer classes")
    return counts


def load_quickdraw(
    data_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | str | os.PathLike | None = None,
    max_per_class: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    test_only: bool = False,
    name: str = "quickdraw",
    budget: Budget | None = None,
) -> Dataset:
    """A ``Dataset`` from a folder of numpy_bitmap files; labels follow the sorted class names, or the order of
    ``classes`` when given as names (``"all"`` or a file with one class per line: sorted names).

    Each class uses its first ``max_per_class`` drawings (all if None), shuffled with ``seed`` and split into
    train and test (``test_fraction`` of them); the same arguments always give the same arrays. The rows to
    read are counted from the files' headers first and held to the ``budget``'s ``max_dataset_bytes``.
    """
    if max_per_class is not None:
        max_per_class = positive_int("load_quickdraw", "max_per_class", max_per_class)
    test_fraction = real_in_range("load_quickdraw", "test_fraction", test_fraction, 0.0, 1.0, low_open=True,
                                  high_open=True)
    seed = non_negative_int("load_quickdraw", "seed", seed)
    budget = budget or DEFAULT_BUDGET
    if classes is not None and not isinstance(classes, str | os.PathLike | Sequence):
        raise TypeError(f"load_quickdraw expects `classes` to be a list of class names. Received: {classes!r:.80}")
    files = class_files(data_dir)
    chosen = choose_classes(files, classes, data_dir)
    counts = _counts(files, chosen, max_per_class, budget)
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "test": ([], [])}
    for label, class_ in enumerate(chosen):
        bitmaps = BitmapFile(files[class_])
        count = counts[class_]
        train_rows, test_rows = split_indices(count, test_fraction, class_rng(seed, class_))
        for split, rows in (("train", train_rows), ("test", test_rows)):
            if split == "train" and test_only:
                continue
            images, labels = parts[split]
            images.append(bitmaps.read(rows))  # just these rows are read into memory
            labels.append(np.full(len(rows), label, dtype=LABEL_DTYPE))
        bitmaps.close()
    arrays = {}
    for split_index, (split, (images, labels)) in enumerate(parts.items()):
        rng = np.random.default_rng([seed, split_index])  # one per split: test_only gives the same test set
        stacked = np.concatenate(images) if images else np.empty((0, BITMAP_PIXELS), dtype=np.uint8)
        stacked = stacked.reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1)
        arrays[split] = shuffled(rng, stacked, np.concatenate(labels) if labels else np.empty(0, LABEL_DTYPE))
    return Dataset(*arrays["train"], *arrays["test"], label_dict=dict(enumerate(chosen)), name=name)
