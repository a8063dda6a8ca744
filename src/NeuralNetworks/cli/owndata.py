"""The command line on your own data: image folders and CSV tables beside the built-in datasets, the shipped
models by name, and what ``info`` and ``predict --json`` show.

``train --data-dir FOLDER`` (no ``--dataset``) trains on a folder of class subfolders and ``train --data
table.csv --target COLUMN`` on a table; ``test`` and ``predict`` then read the model file's preprocessing
(image or table spec) and prepare new data exactly as the training data was.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DEFAULT_DATASET, Dataset, catalog
from ..data import preprocessing as specs
from ..data.table import TableDataset
from .parser import SHIPPED, CommandError

FOLDER = "folder"
TABLE = "csv"
HISTORY_ROWS = 20  # epochs `info` lists (the last ones)


def dataset_name(args: argparse.Namespace) -> str:
    """The dataset the flags name: ``--dataset``; else ``csv`` with ``--data``, ``folder`` with ``--data-dir``
    alone, the default (generated) set otherwise."""
    if getattr(args, "data", None) is not None:
        if args.dataset is not None and catalog.find(args.dataset).name != TABLE:
            raise CommandError(f"--data names a CSV table; it does not go with --dataset {args.dataset}")
        return TABLE
    if args.dataset is not None:
        if catalog.find(args.dataset).name == TABLE:
            raise CommandError("a CSV table is given with --data FILE (and --target COLUMN to train)")
        return args.dataset
    return FOLDER if args.data_dir is not None else DEFAULT_DATASET


def split_rule(args: argparse.Namespace, dataset: object) -> str | None:
    """How the QuickDraw folder was split for this command (``data.streaming.SPLIT_RULES``); None for the rest."""
    from ..data.streaming import SPLIT_RULES, StreamedDataset

    if getattr(args, "data", None) is not None or catalog.find(dataset_name(args)).name != "quickdraw":
        return None
    return SPLIT_RULES[isinstance(dataset, StreamedDataset)]


def check_split_rule(args: argparse.Namespace, model: Any, dataset: object) -> None:
    """Refuse to test a model on the QuickDraw split it was not trained with: that split holds drawings it
    trained on (the in-memory and the streamed splits draw different test rows)."""
    trained, used = getattr(model, "training_split", None), split_rule(args, dataset)
    if trained is not None and used is not None and trained != used:
        flag = "--stream" if trained.endswith("streamed") else "--no-stream"
        raise CommandError(f"{args.model}: the model was trained on the {trained.split('-', 1)[1]} split of "
                           f"QuickDraw, whose test drawings differ from the {used.split('-', 1)[1]} split's (which "
                           f"holds drawings it trained on); test it with {flag}")


def model_path(path: Path) -> Path:
    """``path``, or the shipped model a bare name ``digits`` / ``doodles`` stands for when it names no model file
    here (the file ``models.load`` would read: ``doodles``, ``doodles.npz`` or ``doodles/model.npz``)."""
    from ..nn.saving import resolve_path

    if str(path) in SHIPPED and not resolve_path(path, for_writing=False).is_file():
        from ..app.registry import SHIPPED_MODELS

        return SHIPPED_MODELS[str(path)]
    return path


def loader_options(args: argparse.Namespace, name: str, test_only: bool, model: Any = None) -> dict[str, Any]:
    """The folder or table loader's options from the flags (and, for ``test``, from the model file)."""
    spec = catalog.find(name)
    options: dict[str, Any] = {}
    if spec.name == FOLDER:
        options["cache_dir"] = args.cache_dir
        options["validation_fraction"] = 0.0 if test_only else getattr(args, "validation_split", 0.0)
        if model is not None:
            options.update(_model_image_options(model))
        else:
            options["image_size"] = getattr(args, "image_size", None) and tuple(args.image_size)
            options["color"] = getattr(args, "color", None)
            options["invert"] = getattr(args, "ink_on_paper", None)
        options["whole"] = bool(getattr(args, "whole", False))
    elif spec.name == TABLE:
        if model is not None:
            if specs.kind(model.preprocessing) != specs.TABLE_KIND:
                raise CommandError("the model was not trained on a table; --data needs a model trained with --data")
            options.update(target=model.preprocessing["target"], preprocessing=model.preprocessing,
                           labels=[model.labels[i] for i in sorted(model.labels or {})],
                           whole=bool(getattr(args, "whole", False)))
        else:
            if not args.target:
                raise CommandError("--data needs --target COLUMN: the column to predict")
            options.update(target=args.target, task=args.task, dropna=args.dropna,
                           validation_fraction=args.validation_split)
    elif args.cache_dir is not None or getattr(args, "whole", False):
        raise CommandError(f"--cache-dir and --whole apply to image folders and tables, not to {spec.name}")
    return options


def _model_image_options(model: Any) -> dict[str, Any]:
    """How ``test`` reads a folder for a model: its image spec, or a drawing model's style (the shipped models:
    each image cropped and centred as ``predict`` and the app do), or for a model without either its input
    size with ink-on-paper detection."""
    if specs.kind(model.preprocessing) in (specs.IMAGE_KIND, "style"):
        return {"preprocessing": model.preprocessing}
    shape = tuple(model.input_shape or ())
    if len(shape) != 3 or shape[2] not in specs.CHANNELS:
        raise CommandError(f"the model takes inputs of shape {shape}, not images")
    return {"image_size": shape[:2], "color": "rgb" if shape[2] == 3 else "grayscale"}


def table_data(args: argparse.Namespace, test_only: bool, model: Any = None) -> TableDataset:
    """The CSV table ``--data`` names, as ``train`` (fitting the statistics) or ``test`` (with the model's) needs it."""
    options = loader_options(args, TABLE, test_only, model)
    return catalog.find(TABLE).load(args.data, seed=args.seed, test_only=test_only, **options)


def remap_to_model(dataset: Dataset, model_names: list[str], source: str) -> Dataset:
    """A folder's test images with labels renumbered to the model's: its classes must be among the model's labels
    (a subset is fine); an unknown class is refused by name."""
    unknown = [name for name in dataset.class_names if name not in model_names]
    if unknown:
        raise CommandError(f"{source}: the class {unknown[0]!r} is not one of the model's labels "
                           f"({', '.join(model_names[:20])}); remove that folder or test another model")
    mapping = np.array([model_names.index(name) for name in dataset.class_names], dtype=np.int64)
    return dataclasses.replace(dataset, y_test=mapping[dataset.y_test], y_train=mapping[dataset.y_train],
                               x_val=None, y_val=None, label_dict=dict(enumerate(model_names)))


def describe_preprocessing(preprocessing: object) -> str:
    kind = specs.kind(preprocessing)
    if kind is None:
        return "none recorded"
    if kind == "style":
        return f"{preprocessing} drawing style (28x28, white ink on black)"
    if kind == specs.IMAGE_KIND:
        colour = "RGB" if preprocessing["channels"] == 3 else "grayscale"
        inverted = ", inverted (ink on paper -> white on black)" if preprocessing["invert"] else ""
        return f"images resized to {preprocessing['height']}x{preprocessing['width']}, {colour}{inverted}"
    columns = preprocessing["columns"]
    kinds = [column["type"] for column in columns]
    return (f"table: {preprocessing['task']} of {preprocessing['target']!r} from {len(columns)} columns "
            f"({kinds.count('numeric')} numeric, standardised; {kinds.count('category')} categorical, one-hot)")


def history_table(history: dict[str, list[float]]) -> str:
    """The training history as a table, one row per epoch (the last ``HISTORY_ROWS``)."""
    keys = list(history)
    epochs = len(history[keys[0]])
    width = max(10, *map(len, keys)) + 2
    lines = [f"Training history ({epochs} epoch{'s' if epochs != 1 else ''}):",
             ("epoch".ljust(7) + "".join(key.ljust(width) for key in keys)).rstrip()]
    for epoch in range(max(0, epochs - HISTORY_ROWS), epochs):
        lines.append((str(epoch + 1).ljust(7) + "".join(f"{history[key][epoch]:<{width}.4f}" for key in keys)).rstrip())
    return "\n".join(lines)


def predict_images(served: Any, paths: list[Path], as_json: bool) -> str:
    """``predict``'s output for image files: one line each, or a JSON list of {file, label, scores}."""
    from .. import serving

    results, lines = [], []
    for path in paths:
        bitmap = served.preprocess(image=serving.read_image(path))
        if as_json:
            scores = served.scores(bitmap)
            results.append({"file": str(path), "label": max(scores, key=scores.get), "scores": scores})
        else:
            top = served.top_k(bitmap)
            lines.append(f"{path}: {top[0][0]}  ({', '.join(f'{label} {score:.3f}' for label, score in top)})")
    return json.dumps(results, indent=1) if as_json else "\n".join(lines)


def r_squared(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The coefficient of determination, 1 - SS_res / SS_tot (as scikit-learn's r2_score)."""
    truth, predicted = np.asarray(truth, np.float64).reshape(-1), np.asarray(predicted, np.float64).reshape(-1)
    total = float(((truth - truth.mean()) ** 2).sum())
    return 1.0 - float(((truth - predicted) ** 2).sum()) / total if total > 0 else 0.0
