"""What a model file's ``preprocessing`` entry may hold, checked strictly: a model file is hostile input.

Three forms, all JSON:

- a drawing style, ``"quickdraw"`` or ``"mnist"`` (``data.images.STYLES``): the built-in datasets, as before;
- an image spec, ``{"kind": "image", "height": H, "width": W, "channels": 1 | 3, "invert": bool}``: how a
  file of an image folder became a training sample (``data.folder.prepare_image`` applies it);
- a table spec, ``{"kind": "table", "target": name, "task": "classification" | "regression", "dropna": bool,
  "columns": [...], "target_mean": m, "target_scale": s}``: the CSV columns, their encodings and the training
  split's statistics (``data.table`` applies it); ``dropna`` says whether rows with a missing cell were
  dropped rather than filled. Each column is ``{"name", "type": "numeric", "center", "scale", "fill", "indicator"}`` or
  ``{"name", "type": "category", "categories": [...], "fill", "indicator"}``.

``check(value)`` returns the value or raises ValueError/TypeError naming the entry; every size is bounded.
"""

from __future__ import annotations

import math
from typing import Any

from .._config_checks import entries, integer
from .images import STYLES

IMAGE_KIND, TABLE_KIND = "image", "table"
CHANNELS = (1, 3)
MAX_IMAGE_SIDE = 4096
TASKS = ("classification", "regression")
COLUMN_TYPES = ("numeric", "category")
MAX_COLUMNS = 4096
MAX_CATEGORIES = 10_000  # per column
MAX_TEXT_CHARS = 256  # a column name or a category
MAX_ENCODED_FEATURES = 1 << 16
IMAGE_KEYS = ("kind", "height", "width", "channels", "invert")
TABLE_KEYS = ("kind", "target", "task", "dropna", "columns", "target_mean", "target_scale")
NUMERIC_KEYS = ("name", "type", "center", "scale", "fill", "indicator")
CATEGORY_KEYS = ("name", "type", "categories", "fill", "indicator")


def _real(value: object, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
            positive and value <= 0):
        raise ValueError(f"{where} must be a finite{' positive' if positive else ''} number. Received: {value!r:.80}")
    return float(value)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"{where} must be a string of at most {MAX_TEXT_CHARS} characters. Received: {value!r:.80}")
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where} must be true or false. Received: {value!r:.80}")
    return value


def image_spec(height: int, width: int, channels: int, invert: bool) -> dict[str, Any]:
    """An image spec (see the module docstring), checked."""
    return check_image({"kind": IMAGE_KIND, "height": height, "width": width, "channels": channels,
                        "invert": invert})


def check_image(value: object, where: str = "preprocessing") -> dict[str, Any]:
    spec = entries(value, where, IMAGE_KEYS)
    integer(spec["height"], f"{where}.height", 1, MAX_IMAGE_SIDE)
    integer(spec["width"], f"{where}.width", 1, MAX_IMAGE_SIDE)
    if spec["channels"] not in CHANNELS or isinstance(spec["channels"], bool):
        raise ValueError(f"{where}.channels must be 1 or 3. Received: {spec['channels']!r:.80}")
    _flag(spec["invert"], f"{where}.invert")
    return spec


def _column(value: object, where: str) -> int:
    """Check one column entry; return how many features it encodes to."""
    if not isinstance(value, dict) or value.get("type") not in COLUMN_TYPES:
        raise ValueError(f"{where} must be an object whose type is one of {', '.join(COLUMN_TYPES)}")
    column = entries(value, where, NUMERIC_KEYS if value["type"] == "numeric" else CATEGORY_KEYS)
    _text(column["name"], f"{where}.name")
    indicator = _flag(column["indicator"], f"{where}.indicator")
    if column["type"] == "numeric":
        _real(column["center"], f"{where}.center")
        _real(column["scale"], f"{where}.scale", positive=True)
        _real(column["fill"], f"{where}.fill")
        return 1 + indicator
    categories = column["categories"]
    if not isinstance(categories, list) or not 1 <= len(categories) <= MAX_CATEGORIES:
        raise ValueError(f"{where}.categories must be a list of 1 to {MAX_CATEGORIES} strings")
    names = [_text(category, f"{where}.categories[{i}]") for i, category in enumerate(categories)]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}.categories must be distinct")
    if _text(column["fill"], f"{where}.fill") not in names:
        raise ValueError(f"{where}.fill must be one of its categories. Received: {column['fill']!r:.80}")
    return len(names) + indicator


def check_table(value: object, where: str = "preprocessing") -> dict[str, Any]:
    spec = entries(value, where, TABLE_KEYS)
    _text(spec["target"], f"{where}.target")
    _flag(spec["dropna"], f"{where}.dropna")
    if spec["task"] not in TASKS:
        raise ValueError(f"{where}.task must be one of {', '.join(TASKS)}. Received: {spec['task']!r:.80}")
    _real(spec["target_mean"], f"{where}.target_mean")
    _real(spec["target_scale"], f"{where}.target_scale", positive=True)
    columns = spec["columns"]
    if not isinstance(columns, list) or not 1 <= len(columns) <= MAX_COLUMNS:
        raise ValueError(f"{where}.columns must be a list of 1 to {MAX_COLUMNS} columns")
    features = sum(_column(column, f"{where}.columns[{i}]") for i, column in enumerate(columns))
    names = [column["name"] for column in columns]
    if len(set(names)) != len(names) or spec["target"] in names:
        raise ValueError(f"{where}.columns must have distinct names, the target not among them")
    if features > MAX_ENCODED_FEATURES:
        raise ValueError(f"{where}.columns encode to {features} features, more than {MAX_ENCODED_FEATURES}")
    return spec


def encoded_width(spec: dict[str, Any]) -> int:
    """Features a table spec's columns encode to (one per numeric column, one per category, one per indicator)."""
    return sum((1 if c["type"] == "numeric" else len(c["categories"])) + c["indicator"] for c in spec["columns"])


def image_spec_for(value: object, input_shape: tuple[int, ...] | None) -> dict[str, Any] | None:
    """The image spec a model's images are prepared by: its own, or for a model of (height, width, 1 | 3) inputs
    that recorded none (and is not a 28x28 drawing model) a plain resize, no inversion; None otherwise."""
    if kind(value) == IMAGE_KIND:
        return value  # type: ignore[return-value]
    shape = tuple(input_shape or ())
    if value is None and len(shape) == 3 and shape[2] in CHANNELS and shape[:2] != (28, 28):
        return image_spec(shape[0], shape[1], shape[2], False)
    return None


def kind(value: object) -> str | None:
    """``"style"``, ``"image"``, ``"table"`` or None (no preprocessing) of a checked preprocessing entry."""
    if value is None:
        return None
    return "style" if isinstance(value, str) else value["kind"]


def check(value: object, input_shape: tuple[int, ...] | None = None) -> object:
    """Raise unless ``value`` is None, a drawing style, an image spec or a table spec (see the module docstring);
    with ``input_shape``, a spec must also describe the model's input: (height, width, channels) or (features,)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in STYLES:
            raise ValueError(f"preprocessing must be one of {', '.join(STYLES)}, an image or table spec, or null. "
                             f"Received: {value!r:.80}")
        return value
    if not isinstance(value, dict) or value.get("kind") not in (IMAGE_KIND, TABLE_KIND):
        raise ValueError(f"preprocessing must be a style name or an object whose kind is {IMAGE_KIND} or "
                         f"{TABLE_KIND}. Received: {value!r:.80}")
    if value["kind"] == IMAGE_KIND:
        check_image(value)
        expected: tuple[int, ...] = (value["height"], value["width"], value["channels"])
    else:
        check_table(value)
        expected = (encoded_width(value),)
    if input_shape is not None and tuple(input_shape) != expected:
        raise ValueError(f"preprocessing describes inputs of shape {expected}, but the model takes "
                         f"{tuple(input_shape)}")
    return value
