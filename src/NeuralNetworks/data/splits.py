"""The ``Dataset`` every loader returns, and the shuffle / split / one-hot helpers shared by the loaders.

Images stay ``uint8`` of shape ``(N, height, width, 1)`` (0 = background, 255 = ink): a 60,000-image set is
47 MB instead of 188 MB in float32, and the model rescales each batch itself. Labels are ``int64`` of shape ``(N,)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import non_negative_int, positive_int, real_in_range
from .errors import ClassCountError
from .images import STYLES, Style

LABEL_DTYPE = np.int64
MIN_CLASSES = 2  # a classifier tells classes apart: with one, every answer is right and nothing is learned
NAMES_SHOWN = 5  # class names a message lists before "and N more"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(str(name)) for name in names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def require_classes(where: str, class_names: Sequence[str], train_counts: Sequence[int] | np.ndarray) -> None:
    """Raise ``ClassCountError`` unless a classifier can be trained on these classes: at least ``MIN_CLASSES``
    of them, each with at least one training sample (``train_counts``, in label order).

    The one check every loader path runs before training (the command line's datasets, folders of class files,
    CSV files): ``where`` names the dataset, folder or file in the message, which says what to do."""
    counts = np.asarray(train_counts)
    if counts.shape != (len(class_names),):
        raise ValueError(f"require_classes expects one training count per class ({len(class_names)}). "
                         f"Received {counts.shape[0] if counts.ndim == 1 else counts.shape} counts")
    if len(class_names) < MIN_CLASSES:
        found = f"only the class {_names(class_names)}" if class_names else "no class"
        raise ClassCountError(f"{where}: {found}; a classifier needs at least {MIN_CLASSES} classes to tell apart "
                              "(add classes: more class files in the folder, or more names in --classes)")
    empty = [name for name, count in zip(class_names, counts, strict=True) if count <= 0]
    if empty:
        raise ClassCountError(f"{where}: no training sample for {len(empty)} of {len(class_names)} classes "
                              f"({_names(empty)}); give every class samples (more per class, e.g. a larger "
                              "--max-per-class) or leave those classes out")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows of the ``(N, num_classes)`` float32 identity picked by integer ``labels`` of shape ``(N,)``."""
    num_classes = positive_int("one_hot", "num_classes", num_classes)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"one_hot expects integer labels of shape (N,). Received an array of shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot expects labels in [0, {num_classes - 1}]. Received labels from {labels.min()} to {labels.max()}"
        )
    encoded = np.zeros((labels.size, num_classes), dtype=np.float32)
    encoded[np.arange(labels.size), labels] = 1.0
    return encoded


def split_indices(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` and cut off ``round(fraction * n)`` of it: returns ``(kept, held_out)``, each sorted."""
    order = rng.permutation(n)
    held = int(round(fraction * n))
    return np.sort(order[held:]), np.sort(order[:held])


def stratified_split_indices(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``split_indices`` but per class, so every class keeps its share in both parts."""
    kept, held = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep, hold = split_indices(len(members), fraction, rng)
        kept.append(members[keep])
        held.append(members[hold])
    empty = np.empty(0, dtype=np.intp)
    return np.sort(np.concatenate(kept or [empty])), np.sort(np.concatenate(held or [empty]))


def shuffled(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``images`` and ``labels`` in the same random order (so class-sorted data is not served class by class)."""
    order = rng.permutation(len(labels))
    return images[order], labels[order]


class Labelled:
    """``num_classes`` and ``class_names`` of a dataset with a ``label_dict`` ({0: "circle", 1: "square", ...})."""

    label_dict: dict[int, str]

    @property
    def num_classes(self) -> int:
        return len(self.label_dict)

    @property
    def class_names(self) -> list[str]:
        """The names in label order, e.g. for ``model.save(path, labels=dataset.class_names)``."""
        return [self.label_dict[index] for index in range(self.num_classes)]


@dataclass(frozen=True, repr=False, eq=False)
class Dataset(Labelled):
    """Train / test (and optional validation) images with integer labels and the class names.

    ``x_*`` are uint8 ``(N, 28, 28, 1)`` arrays; ``y_*`` are int64 ``(N,)`` class indices into ``label_dict``
    (``{0: "circle", 1: "square", ...}``). A loader asked for the test split only returns empty train arrays.
    ``preprocessing`` is how a drawing becomes one of these images (a ``data.images`` style); ``data.load``
    sets it from the catalog, and it is None for a ``Dataset`` built by hand unless given.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_dict: dict[int, str]
    name: str = "dataset"
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    preprocessing: Style | None = None

    def __post_init__(self) -> None:
        if self.preprocessing is not None and self.preprocessing not in STYLES:
            raise ValueError(f"Dataset {self.name!r}: `preprocessing` must be one of {', '.join(STYLES)} or None. "
                             f"Received: {self.preprocessing!r}")
        if sorted(self.label_dict) != list(range(len(self.label_dict))) or not self.label_dict:
            raise ValueError(
                f"Dataset {self.name!r}: label_dict keys must be 0..num_classes-1. "
                f"Received keys {sorted(self.label_dict)}"
            )
        for split in self._splits():
            images, labels = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if images.ndim != 4 or images.dtype != np.uint8:
                raise ValueError(
                    f"Dataset {self.name!r}: x_{split} must be uint8 of shape (N, height, width, channels). "
                    f"Received {images.dtype} of shape {images.shape}"
                )
            if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(
                    f"Dataset {self.name!r}: y_{split} must be integers of shape ({len(images)},). "
                    f"Received {labels.dtype} of shape {labels.shape}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"Dataset {self.name!r}: y_{split} must hold labels in [0, {self.num_classes - 1}]. "
                    f"Received labels from {labels.min()} to {labels.max()}"
                )
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError(f"Dataset {self.name!r}: give both x_val and y_val, or neither")

    def _splits(self) -> list[str]:
        return ["train", "test"] + (["val"] if self.x_val is not None else [])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, batch axis excluded: ``(28, 28, 1)``."""
        return tuple(self.x_test.shape[1:] if len(self.x_test) else self.x_train.shape[1:])

    @property
    def y_train_one_hot(self) -> np.ndarray:
        return one_hot(self.y_train, self.num_classes)

    @property
    def y_test_one_hot(self) -> np.ndarray:
        return one_hot(self.y_test, self.num_classes)

    @property
    def y_val_one_hot(self) -> np.ndarray | None:
        return None if self.y_val is None else one_hot(self.y_val, self.num_classes)

    def class_counts(self, split: str = "train") -> np.ndarray:
        """How many samples of each class ``split`` ("train", "test" or "val") holds, in label order."""
        if split not in self._splits():
            raise ValueError(f"Unknown split {split!r}. Expected one of: {', '.join(self._splits())}")
        return np.bincount(getattr(self, f"y_{split}"), minlength=self.num_classes)

    def with_validation(self, fraction: float = 0.1, seed: int = 0, *, stratify: bool = True) -> Dataset:
        """A copy whose ``x_val, y_val`` are a random ``fraction`` of the training set, removed from it.

        The samples are drawn at random (per class when ``stratify``), never the last rows, so data stored
        class by class still gives a validation set of every class. The same seed gives the same split.
        """
        fraction = real_in_range("with_validation", "fraction", fraction, 0.0, 1.0, low_open=True, high_open=True)
        seed = non_negative_int("with_validation", "seed", seed)
        if self.x_val is not None:
            raise ValueError(f"Dataset {self.name!r} already has a validation split of {len(self.x_val)} samples")
        rng = np.random.default_rng(seed)
        if stratify:
            kept, held = stratified_split_indices(self.y_train, fraction, rng)
        else:
            kept, held = split_indices(len(self.y_train), fraction, rng)
        if len(held) == 0 or len(kept) == 0:
            raise ValueError(
                f"with_validation(fraction={fraction}) leaves no samples for training or validation "
                f"out of {len(self.y_train)} training samples"
            )
        return dataclasses.replace(
            self, x_train=self.x_train[kept], y_train=self.y_train[kept],
            x_val=self.x_train[held], y_val=self.y_train[held],
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(getattr(self, f'y_{split}'))}" for split in self._splits())
        return (f"Dataset({self.name!r}, {sizes}, num_classes={self.num_classes}, "
                f"input_shape={self.input_shape})")
