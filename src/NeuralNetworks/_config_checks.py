"""The plain checks of a model file's config entries: an object with exactly the expected keys, a bounded
integer, a sample shape within the budget, the keyword arguments a class's constructor takes."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from typing import Any

from ._validation import shown
from .budget import Budget

Shape = tuple[int, ...]


def type_name(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def entries(value: object, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """``value`` as a JSON object holding every ``required`` key and nothing beyond ``optional``."""
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a JSON object. Received {type_name(value)}")
    required = set(required)
    missing, unknown = sorted(required - value.keys()), sorted(value.keys() - required - set(optional))
    if missing or unknown:
        allowed = f" (optionally {', '.join(sorted(set(optional)))})" if optional else ""
        raise ValueError(f"{where} must have the keys {', '.join(sorted(required)) or 'none'}{allowed}; "
                         f"missing: {', '.join(missing) or 'none'}; "
                         f"unknown: {', '.join(shown(key) for key in unknown[:10]) or 'none'}")
    return value


def integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer from {low} to {high}. Received: {shown(value)}")
    return value


def shape(value: object, where: str, budget: Budget) -> Shape:
    """A sample shape: positive integers, each at most max_dimension, at most max_sample_elements in all."""
    if not isinstance(value, list | tuple) or not value or len(value) > budget.max_json_depth:
        raise ValueError(f"{where} must be a list of positive integers. Received: {shown(value)}")
    shape = tuple(integer(axis, where, 1, budget.max_dimension) for axis in value)
    if math.prod(shape) > budget.max_sample_elements:
        raise ValueError(f"{where} {shape} holds {math.prod(shape)} values per sample, more than the budget's "
                         f"max_sample_elements ({budget.max_sample_elements})")
    return shape


def constructor_keys(layer_class: type) -> tuple[str, ...]:
    """The keyword arguments a class's constructor chain accepts (the keys its saved config may have)."""
    keys: list[str] = []
    for klass in layer_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            keys += [p.name for p in inspect.signature(init).parameters.values()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    return tuple(dict.fromkeys(keys))
