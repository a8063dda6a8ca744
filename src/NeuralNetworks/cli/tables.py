"""The command line on CSV tables: the model ``train --data`` builds, and ``predict --model M table.csv``.

Predictions go to stdout, one per row: CSV (``row,<target>`` and, for a classifier, every class's probability)
or, with ``--json``, a list of ``{"row", "label", "scores"}`` (``{"row", "value"}`` for a regressor).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data import preprocessing as specs
from ..data.table import TableDataset, decode_targets, encode, read_table
from .parser import CommandError

ROW_COLUMN = "row"


def is_table_model(model: Any) -> bool:
    return specs.kind(model.preprocessing) == specs.TABLE_KIND


def build_and_compile(dataset: TableDataset, seed: int, optimizer: Any) -> Any:
    """``presets.table_mlp`` for the table, compiled: cross-entropy and accuracy, or mean squared error."""
    from ..nn import losses, presets

    regression = dataset.task == "regression"
    model = presets.table_mlp(dataset.input_shape, max(dataset.num_classes, 1), regression=regression, seed=seed)
    model.compile(optimizer=optimizer, loss=losses.MeanSquaredError() if regression else
                  losses.SparseCategoricalCrossentropy(), metrics=[] if regression else ["accuracy"])
    return model


def test_line(model: Any, dataset: TableDataset) -> str:
    """``test accuracy: 0.9123 ...`` for a classifier, ``test R²: 0.4567 ...`` for a regressor."""
    from .owndata import r_squared

    predicted = model.predict(dataset.x_test)
    if dataset.task == "regression":
        spec = dataset.preprocessing
        truth = decode_targets(dataset.y_test, spec)
        values = decode_targets(predicted, spec)
        error = float(np.sqrt(np.mean((truth - values) ** 2)))
        return f"test R²: {r_squared(truth, values):.4f} (RMSE {error:.4g}) on {len(truth)} rows"
    accuracy = float(np.mean(predicted.argmax(axis=1) == dataset.y_test))
    return f"test accuracy: {accuracy:.4f} on {len(dataset.y_test)} rows"


def predict_table(model: Any, path: Path, as_json: bool) -> str:
    """The predictions for every row of a CSV file (see the module docstring)."""
    if not is_table_model(model):
        raise CommandError(f"{path}: a CSV table needs a model trained on a table (train --data ... --target ...)")
    spec = model.preprocessing
    header, rows = read_table(path)
    if not rows:
        raise CommandError(f"{path}: no rows to predict")
    outputs = model.predict(encode(header, rows, spec, str(path)))
    if spec["task"] == "regression":
        values = decode_targets(outputs, spec)
        records: list[dict[str, Any]] = [{ROW_COLUMN: number, "value": float(value)}
                                         for number, value in enumerate(values, start=1)]
        columns = [ROW_COLUMN, spec["target"]]
        table_rows = [[number, f"{value:.6g}"] for number, value in enumerate(values, start=1)]
    else:
        labels = [model.labels[i] for i in sorted(model.labels)]
        best = outputs.argmax(axis=1)
        records = [{ROW_COLUMN: number, "label": labels[choice],
                    "scores": {label: float(p) for label, p in zip(labels, scores, strict=True)}}
                   for number, (choice, scores) in enumerate(zip(best, outputs, strict=True), start=1)]
        columns = [ROW_COLUMN, spec["target"], *(f"p({label})" for label in labels)]
        table_rows = [[number, labels[choice], *(f"{p:.4f}" for p in scores)]
                      for number, (choice, scores) in enumerate(zip(best, outputs, strict=True), start=1)]
    if as_json:
        return json.dumps(records, indent=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(table_rows)
    return buffer.getvalue().rstrip("\n")
