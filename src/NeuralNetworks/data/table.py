"""Your own table: a CSV file with a header row, one column the target, as a ``TableDataset``.

``load_table("houses.csv", target="price")`` (``data.load("csv", path=..., target=...)``) reads the file
(UTF-8, at most the budget's ``max_dataset_bytes``), then:

- types each column: numeric when every present cell is a finite number, else a category (text);
- the task: classification for a text or integer target (written without a decimal point), regression for a
  target of other numbers, such as ``3.5`` or ``3.0`` (or ``task="regression"``); rows without a target are
  dropped and counted;
- missing cells (empty, ``NA``, ``NaN``, ``N/A``, ``null``) are filled, the median of a numeric column and the
  most frequent category, with an indicator column (1 where the cell was missing) for a column that had any in
  the training split; or, with ``dropna=True``, their rows are dropped and counted;
- splits each class (or the whole table, for regression) by a seeded permutation: ``test_fraction`` test,
  ``validation_fraction`` of the rest validation;
- standardises numeric columns (and a regression target) with the *training* split's mean and deviation, and
  one-hot encodes categories (the vocabulary is the whole column's: a category seen only in the test split still
  gets its column, all zeros in training).

Every statistic goes into a table spec (``data.preprocessing``) saved with the model, and ``encode`` applies it
to a new table: a missing column, an unseen category or text in a numeric column is a ``TableError`` naming the
row and the column.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._files import open_regular
from .._validation import non_negative_int, real_in_range
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from .errors import DataError
from .preprocessing import MAX_CATEGORIES, MAX_COLUMNS, MAX_TEXT_CHARS, TASKS, check_table
from .quickdraw import DEFAULT_TEST_FRACTION, class_rng
from .splits import LABEL_DTYPE, Labelled, require_classes

INTEGER = re.compile(r"[+-]?[0-9]+")
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none"})  # compared lower-cased, stripped
MAX_TABLE_BYTES = 128 * 2**20  # a CSV file's text: its cells as Python strings take several times that
MIN_SCALE = 1e-12  # a column's deviation below this is taken as 1 (a constant column)
TARGET_DTYPE = np.float32


class TableError(DataError):
    """A table cannot be read or encoded: the message names the file, the row and the column."""


@dataclass(frozen=True, repr=False, eq=False)
class TableDataset(Labelled):
    """Train / test (and optional validation) rows of a table, encoded: ``x_*`` float32 ``(N, features)``,
    ``y_*`` int64 class indices (classification) or float32 standardised values (regression). ``preprocessing``
    is the table spec; ``label_dict`` the classes ({} for regression)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_dict: dict[int, str]
    preprocessing: dict
    name: str = "table"
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @property
    def task(self) -> str:
        return self.preprocessing["task"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:] if len(self.x_train) else self.x_test.shape[1:])

    def __repr__(self) -> str:
        return (f"TableDataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"task={self.task}, features={self.input_shape[0]})")


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_table(path: str | os.PathLike, budget: Budget = DEFAULT_BUDGET) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file, every row as long as the header; TableError otherwise."""
    limit = min(budget.max_dataset_bytes, MAX_TABLE_BYTES)
    with open_regular(path, TableError, "CSV file") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise TableError(f"{path}: larger than {bytes_text(limit)}, the most a table may take (the budget's "
                         "max_dataset_bytes, at most MAX_TABLE_BYTES); sample the rows")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not UTF-8 text (byte {error.start}); save the table as UTF-8 CSV") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise TableError(f"{path}: not a CSV table ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]  # blank lines
    if not rows:
        raise TableError(f"{path}: the file is empty; expected a header row and data rows")
    header = [name.strip() for name in rows[0]]
    if len(header) > MAX_COLUMNS + 1 or any(not name or len(name) > MAX_TEXT_CHARS for name in header):
        raise TableError(f"{path}: the header must name every column (at most {MAX_COLUMNS + 1} columns of at "
                         f"most {MAX_TEXT_CHARS} characters)")
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise TableError(f"{path}: the column {repeated[0]!r} appears twice in the header")
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise TableError(f"{path}, row {number}: {len(row)} cells, the header has {len(header)} columns")
    return header, rows[1:]


def _column_spec(name: str, cells: list[str], train: np.ndarray, vocabulary: list[str] | None) -> dict:
    present = [i for i in train if not is_missing(cells[i])]
    indicator = len(present) < len(train)
    if vocabulary is None:
        values = np.array([float(cells[i]) for i in present]) if present else np.zeros(1)
        fill = float(np.median(values))
        filled = np.concatenate([values, np.full(len(train) - len(present), fill)])
        scale = float(filled.std())
        return {"name": name, "type": "numeric", "center": float(filled.mean()),
                "scale": scale if scale > MIN_SCALE else 1.0, "fill": fill, "indicator": indicator}
    counts = Counter(cells[i].strip() for i in present)
    fill = min(counts, key=lambda value: (-counts[value], value)) if counts else vocabulary[0]
    return {"name": name, "type": "category", "categories": vocabulary, "fill": fill, "indicator": indicator}


def encode(header: Sequence[str], rows: Sequence[Sequence[str]], spec: dict, source: str = "the table") -> np.ndarray:
    """Rows of a table -> the ``(N, features)`` float32 a table spec's model sees; TableError naming the row and
    the column for a missing column, an unseen category or text in a numeric column."""
    position = {name: index for index, name in enumerate(header)}
    missing = [column["name"] for column in spec["columns"] if column["name"] not in position]
    if missing:
        raise TableError(f"{source}: no column {missing[0]!r} (the model needs the columns "
                         f"{', '.join(column['name'] for column in spec['columns'])})")
    parts = []
    for column in spec["columns"]:
        cells = [row[position[column["name"]]].strip() for row in rows]
        absent = np.array([is_missing(cell) for cell in cells], dtype=bool)
        if column["type"] == "numeric":
            values = np.empty(len(cells))
            for number, (cell, gap) in enumerate(zip(cells, absent, strict=True), start=1):
                value = column["fill"] if gap else _number(cell)
                if value is None:
                    raise TableError(f"{source}, row {number}, column {column['name']!r}: {cell[:40]!r} is not a "
                                     "number (the column is numeric)")
                values[number - 1] = value
            parts.append(((values - column["center"]) / column["scale"])[:, None])
        else:
            index = {category: i for i, category in enumerate(column["categories"])}
            hot = np.zeros((len(cells), len(index)))
            for number, (cell, gap) in enumerate(zip(cells, absent, strict=True), start=1):
                found = index.get(column["fill"] if gap else cell)
                if found is None:
                    raise TableError(f"{source}, row {number}, column {column['name']!r}: unseen category "
                                     f"{cell[:40]!r} (known: {', '.join(column['categories'][:10])}"
                                     f"{', ...' if len(index) > 10 else ''})")
                hot[number - 1, found] = 1
            parts.append(hot)
        if column["indicator"]:
            parts.append(absent[:, None].astype(np.float64))
    return np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((len(rows), 0), np.float32)


def _split(labels: np.ndarray | None, count: int, test_fraction: float, validation_fraction: float,
           seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split: per class (classification) or over all rows, by a seeded permutation."""
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)] if labels is not None else [
        np.arange(count)]
    parts: dict[str, list[np.ndarray]] = {"test": [], "val": [], "train": []}
    for number, members in enumerate(groups):
        order = members[class_rng(seed, f"table-{number}").permutation(len(members))]
        test = int(np.rint(len(members) * test_fraction))
        val = int(np.rint((len(members) - test) * validation_fraction))
        parts["test"].append(order[:test])
        parts["val"].append(order[test:test + val])
        parts["train"].append(order[test + val:])
    return {split: np.sort(np.concatenate(pieces)).astype(np.intp) for split, pieces in parts.items()}


def _target(cells: list[str], task: str | None, path: str, target: str) -> tuple[str, list[str] | None]:
    """The task and, for classification, the sorted class names."""
    numbers = [_number(cell) for cell in cells]
    numeric = all(value is not None for value in numbers)
    integral = numeric and all(INTEGER.fullmatch(cell) for cell in cells)  # "3" is a class, "3.0" a quantity
    task = task or ("classification" if not numeric or integral else "regression")
    if task == "regression":
        if not numeric:
            bad = next(cell for cell, value in zip(cells, numbers, strict=True) if value is None)
            raise TableError(f"{path}, column {target!r}: {bad[:40]!r} is not a number; a regression target must be")
        if len(set(numbers)) < 2:
            raise TableError(f"{path}, column {target!r}: the target has a single value; nothing to learn (pick "
                             "another --target column)")
        return task, None
    names = sorted(set(cells), key=lambda cell: (float(cell), cell) if integral else (0.0, cell))
    unusable = next((name for name in names if len(name) > MAX_TEXT_CHARS or not name.isprintable()), None)
    if unusable is not None:  # class names become the model's labels
        raise TableError(f"{path}, column {target!r}: the class {unusable[:40]!r} cannot be a label (at most "
                         f"{MAX_TEXT_CHARS} printable characters)")
    if len(names) > MAX_CATEGORIES:
        raise TableError(f"{path}, column {target!r}: {len(names)} classes, more than {MAX_CATEGORIES}; for a "
                         "numeric target pass task='regression' (--task regression)")
    return task, names


def load_table(
    path: str | os.PathLike,
    *,
    target: str,
    task: str | None = None,
    dropna: bool = False,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    validation_fraction: float = 0.0,
    seed: int = 0,
    test_only: bool = False,
    whole: bool = False,
    preprocessing: dict | None = None,
    labels: Sequence[str] | None = None,
    name: str = "table",
    budget: Budget | None = None,
) -> TableDataset:
    """A ``TableDataset`` from a CSV file (see the module docstring). ``preprocessing`` (a model's table spec)
    and ``labels`` (its class names) read the table for that model instead: its target, task, row dropping and
    statistics, its classes; with the same file and seed the split is the one the model trained on. ``whole``:
    every row is test data (a table the model never trained on)."""
    if preprocessing is not None:
        check_table(preprocessing)
        target, task, dropna = preprocessing["target"], preprocessing["task"], preprocessing["dropna"]
    seed = non_negative_int("load_table", "seed", seed)
    test_fraction = real_in_range("load_table", "test_fraction", test_fraction, 0.0, 1.0, low_open=True,
                                  high_open=True)
    validation_fraction = real_in_range("load_table", "validation_fraction", validation_fraction, 0.0, 1.0,
                                        high_open=True)
    if task is not None and task not in TASKS:
        raise ValueError(f"load_table expects `task` to be one of {', '.join(TASKS)} or None. Received: {task!r}")
    source = str(path)
    header, rows = read_table(path, budget or DEFAULT_BUDGET)
    if target not in header:
        raise TableError(f"{source}: no column {target!r} to predict; the columns are {', '.join(header[:20])}")
    if len(header) < 2:
        raise TableError(f"{source}: only the target column {target!r}; a table needs at least one other column")
    notes = []
    column = header.index(target)
    kept = [row for row in rows if not is_missing(row[column])]
    if len(kept) < len(rows):
        notes.append(f"dropped {len(rows) - len(kept)} row(s) without a {target!r} value")
    if dropna:
        before = len(kept)
        kept = [row for row in kept if not any(is_missing(cell) for cell in row)]
        notes.append(f"--dropna: dropped {before - len(kept)} row(s) with a missing value, kept {len(kept)}")
    if not kept:
        raise TableError(f"{source}: no row left to learn from")
    targets = [row[column].strip() for row in kept]
    if preprocessing is None or task == "regression":
        task, class_names = _target(targets, task, source, target)
    else:
        class_names = [str(label) for label in labels or ()]
    codes = None
    if class_names is not None:
        index = {name_: i for i, name_ in enumerate(class_names)}
        unknown = next((number for number, cell in enumerate(targets, start=1) if cell not in index), None)
        if unknown is not None:
            raise TableError(f"{source}, row {unknown}, column {target!r}: the class {targets[unknown - 1][:40]!r} "
                             f"is not one of the model's ({', '.join(class_names[:10])})")
        codes = np.array([index[cell] for cell in targets], dtype=LABEL_DTYPE)
    splits = _split(codes, len(kept), 1.0 if whole else test_fraction, validation_fraction, seed)
    labels_ = codes
    if preprocessing is not None:
        return _for_model(header, kept, targets, labels_, splits, preprocessing, class_names, source, name, notes)
    if labels_ is not None:
        require_classes(f"{source}, column {target!r}", class_names,
                        np.bincount(labels_[splits["train"]], minlength=len(class_names)))
    elif len(splits["train"]) < 2:
        raise TableError(f"{source}: {len(kept)} rows leave fewer than two for training")
    features = [name_ for name_ in header if name_ != target]
    columns = []
    for name_ in features:
        cells = [row[header.index(name_)] for row in kept]
        numeric = all(is_missing(cell) or _number(cell) is not None for cell in cells)
        vocabulary = None if numeric else sorted({cell.strip() for cell in cells if not is_missing(cell)})
        if vocabulary is not None and len(vocabulary) > MAX_CATEGORIES:
            raise TableError(f"{source}, column {name_!r}: {len(vocabulary)} distinct texts, more than "
                             f"{MAX_CATEGORIES} categories; drop the column (an identifier?)")
        columns.append(_column_spec(name_, cells, splits["train"], vocabulary or (None if numeric else [""])))
    if labels_ is None:
        values = np.array([float(cell) for cell in targets])
        center, scale = float(values[splits["train"]].mean()), float(values[splits["train"]].std())
        y = ((values - center) / (scale if scale > MIN_SCALE else 1.0)).astype(TARGET_DTYPE)
    else:
        center, scale, y = 0.0, 1.0, labels_
    spec = check_table({"kind": "table", "target": target, "task": task, "dropna": dropna, "columns": columns,
                        "target_mean": center, "target_scale": scale if scale > MIN_SCALE else 1.0})
    x = encode(header, kept, spec, source)
    part = {split: (x[rows_], y[rows_]) for split, rows_ in splits.items()}
    if test_only:
        part["train"] = (x[:0], y[:0])
    has_val = len(splits["val"]) > 0 and not test_only
    return TableDataset(*part["train"], *part["test"], label_dict=dict(enumerate(class_names or [])),
                        preprocessing=spec, name=name, x_val=part["val"][0] if has_val else None,
                        y_val=part["val"][1] if has_val else None, notes=tuple(notes))


def _for_model(header: list[str], kept: list[list[str]], targets: list[str], codes: np.ndarray | None,
               splits: dict[str, np.ndarray], spec: dict, class_names: list[str] | None, source: str, name: str,
               notes: list[str]) -> TableDataset:
    """The test split of a table read for a model: encoded by the model's spec, targets standardised by it."""
    rows = splits["test"]
    x = encode(header, [kept[i] for i in rows], spec, source)
    if codes is None:
        numbers = [_number(targets[i]) for i in rows]
        if None in numbers:
            number = int(rows[numbers.index(None)]) + 1
            raise TableError(f"{source}, row {number}, column {spec['target']!r}: {targets[number - 1][:40]!r} is not "
                             "a number; the model predicts numbers")
        values = np.array(numbers, dtype=np.float64)
        y = ((values - spec["target_mean"]) / spec["target_scale"]).astype(TARGET_DTYPE)
    else:
        y = codes[rows]
    return TableDataset(x[:0], y[:0], x, y, label_dict=dict(enumerate(class_names or [])), preprocessing=spec,
                        name=name, notes=tuple(notes))


def decode_targets(outputs: np.ndarray, spec: dict) -> np.ndarray:
    """A regression model's standardised outputs -> values in the target's unit."""
    return outputs.reshape(len(outputs)) * spec["target_scale"] + spec["target_mean"]
