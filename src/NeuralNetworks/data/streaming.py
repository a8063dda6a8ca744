"""Quick, Draw! streamed from its files: a folder of any size trains without copying drawings into memory.

``stream_quickdraw(folder)`` opens every class file (read by row, never mapped: see ``quickdraw.BitmapFile``)
and returns a ``StreamedDataset`` whose ``train``,
``validation`` and ``test`` splits are ``SampleSource``s (see ``nn.sources``): ``model.fit(data.train,
validation_data=data.validation)`` reads each batch from the files as it is needed.

What stays in memory is a few numbers per class, never a list of rows:

- per class: its usable drawings ``n`` and 4 Feistel keys drawn from (seed, class name), which define a
  pseudo-random bijection ``pi`` of its row numbers ``[0, n)`` (``_permutation.permute``);
- the split by positions in that order: ``pi(0 .. n_test-1)`` are the test rows, the next ``n_val`` the
  validation rows, the rest the training rows; so a class's split depends only on the seed, the class and its
  size, never on the other classes nor on how many processes read it;
- per split, the cumulative counts over classes, which map a position of the split to (class, position).

For 345 classes that is about 30 KB, whatever the number of drawings. The epoch's shuffled order over a split is
drawn by the training loop in the same way (``RandomPermutation``). The split differs from ``load_quickdraw``'s,
which shuffles each class with ``rng.permutation`` (an O(1) index cannot reproduce that): a model file records
which split trained it (``SPLIT_RULES``) and ``NeuralNetworks test`` refuses the other one.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._permutation import ROUNDS, draw_keys, permute
from .errors import DataError
from .images import Style
from .quickdraw import (
    BITMAP_PIXELS,
    DEFAULT_TEST_FRACTION,
    IMAGE_SIDE,
    BitmapFile,
    choose_classes,
    class_files,
    class_rng,
)
from .splits import LABEL_DTYPE, Labelled

# How a QuickDraw folder was split when a model was trained on it: in memory (``load_quickdraw``) and streamed
# (``stream_quickdraw``) draw different test rows, so a model file records which (``training_split``) and the
# command line refuses to test it on the other split, which holds drawings it trained on.
SPLIT_RULES = ("quickdraw-in-memory", "quickdraw-streamed")
DEFAULT_VALIDATION_FRACTION = 0.1  # of the drawings left after the test split, as the command line's in memory
SPLITS = ("test", "validation", "train")  # in the order they take positions of each class's shuffled rows


class QuickDrawSplit:
    """One split of a streamed QuickDraw folder: a ``SampleSource`` of uint8 ``(28, 28, 1)`` drawings and int64
    labels, ordered class by class (the training loop shuffles)."""

    sample_shape = (IMAGE_SIDE, IMAGE_SIDE, 1)

    def __init__(self, bitmaps: Sequence[BitmapFile], sizes: np.ndarray, keys: np.ndarray, first: np.ndarray,
                 counts: np.ndarray, name: str) -> None:
        self._bitmaps, self._sizes, self._keys, self._first = bitmaps, sizes, keys, first
        self.counts = counts  # drawings of each class in this split, in label order
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.name = name

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def index_arrays(self) -> tuple[np.ndarray, ...]:
        """Every array this split keeps (a few numbers per class), for measuring the index."""
        return self._sizes, self._keys, self._first, self.counts, self.offsets

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class, row in its file) of the split's positions ``index``."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"{self.name} split positions must be in [0, {len(self)})")
        classes = np.searchsorted(self.offsets, index, side="right") - 1
        positions = index - self.offsets[classes] + self._first[classes]
        return classes, permute(positions, self._sizes[classes], self._keys[:, classes])

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        classes, rows = self.rows(index)
        images = np.empty((len(rows), BITMAP_PIXELS), dtype=np.uint8)
        starts = np.flatnonzero(np.diff(classes, prepend=-1))  # runs of one class (one per class when sorted)
        for start, stop in zip(starts, [*starts[1:], len(rows)], strict=True):
            self._bitmaps[classes[start]].read(rows[start:stop], out=images[start:stop])
        return images.reshape(-1, *self.sample_shape), classes.astype(LABEL_DTYPE)

    def __repr__(self) -> str:
        return f"QuickDrawSplit({self.name!r}, {len(self)} drawings of {len(self.counts)} classes)"


@dataclass(frozen=True, repr=False, eq=False)
class StreamedDataset(Labelled):
    """Train / validation / test splits read from the class files batch by batch, with the class names; the streamed
    counterpart of ``splits.Dataset`` (``label_dict``, ``class_names``, ``num_classes``, ``input_shape``,
    ``preprocessing`` mean the same)."""

    train: QuickDrawSplit
    validation: QuickDrawSplit
    test: QuickDrawSplit
    label_dict: dict[int, str]
    name: str = "quickdraw"
    preprocessing: Style | None = None
    drawings: int = field(default=0)  # usable drawings over all splits

    @property
    def input_shape(self) -> tuple[int, ...]:
        return QuickDrawSplit.sample_shape

    @property
    def nbytes(self) -> int:
        """What loading every drawing into memory would take (uint8 pixels)."""
        return self.drawings * BITMAP_PIXELS

    @property
    def index_bytes(self) -> int:
        """What the index takes in memory: the per-class numbers of the three splits (drawings stay on disk)."""
        arrays = {id(a): a for split in (self.train, self.validation, self.test) for a in split.index_arrays()}
        return sum(array.nbytes for array in arrays.values())

    def __repr__(self) -> str:
        return (f"StreamedDataset({self.name!r}, train={len(self.train)}, validation={len(self.validation)}, "
                f"test={len(self.test)}, num_classes={self.num_classes})")


def _fraction(name: str, value: object, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            (0 < value if low_open else 0 <= value) and value < 1):
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(f"stream_quickdraw expects `{name}` in {interval}. Received: {name}={value!r}")
    return float(value)


def stream_quickdraw(
    data_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | str | os.PathLike | None = None,
    max_per_class: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
    name: str = "quickdraw",
) -> StreamedDataset:
    """Memory-map a folder of numpy_bitmap files and split each class by a seeded bijection of its rows.

    ``classes``: names (labels in that order), ``"all"`` or a file with one class per line (labels: sorted
    names); all by default. Each class uses its first ``max_per_class`` drawings (all if None): round(
    ``test_fraction`` n) of them are test, round(``validation_fraction`` (n - n_test)) validation, the rest train.
    """
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(
            max_per_class, numbers.Integral) or max_per_class <= 0):
        raise ValueError(f"stream_quickdraw expects a positive integer `max_per_class` or None. "
                         f"Received: max_per_class={max_per_class!r}")
    test_fraction = _fraction("test_fraction", test_fraction, low_open=True)
    validation_fraction = _fraction("validation_fraction", validation_fraction, low_open=False)
    files = class_files(data_dir)
    chosen = choose_classes(files, classes, data_dir)
    bitmaps = [BitmapFile(files[class_]) for class_ in chosen]
    sizes = np.array([len(b) if max_per_class is None else min(len(b), max_per_class) for b in bitmaps],
                     dtype=np.int64)
    empty = [str(files[class_]) for class_, size in zip(chosen, sizes, strict=True) if size == 0]
    if empty:
        raise DataError(f"{empty[0]}: holds no drawings")
    keys = np.empty((ROUNDS, len(chosen)), dtype=np.uint64)
    for label, class_ in enumerate(chosen):
        keys[:, label] = draw_keys(class_rng(seed, class_))
    counts = {"test": np.rint(sizes * test_fraction).astype(np.int64)}
    counts["validation"] = np.rint((sizes - counts["test"]) * validation_fraction).astype(np.int64)
    counts["train"] = sizes - counts["test"] - counts["validation"]
    first = dict(zip(SPLITS, np.cumsum([np.zeros_like(sizes), *(counts[s] for s in SPLITS[:-1])], axis=0),
                     strict=True))
    split = {s: QuickDrawSplit(bitmaps, sizes, keys, first[s], counts[s], s) for s in SPLITS}
    return StreamedDataset(split["train"], split["validation"], split["test"], dict(enumerate(chosen)),
                           name=name, drawings=int(sizes.sum()))
