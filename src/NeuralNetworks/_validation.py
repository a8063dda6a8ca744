"""Argument checks shared by the packages (nn, data): each error names the argument and what it received."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np


def positive_int(owner: str, name: str, value: object) -> int:
    """Return `value` as an int, or raise naming `owner` and `name` when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner} expects a positive integer `{name}`. Received: {name}={value!r}")
    return int(value)


def non_negative_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as an int, or raise naming ``owner`` and ``name`` when it is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{owner} expects a non-negative integer `{name}`. Received: {name}={value!r}")
    return int(value)


def real_in_range(
    owner: str, name: str, value: object, low: float, high: float, *, low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return `value` as a float in [low, high] (ends opened on request), or raise a message naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise TypeError(f"{owner} expects a real number `{name}`. Received: {name}={value!r}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(
            f"{owner} expects `{name}` in {left}{low}, {high}{right}. Received: {name}={value!r}"
        )
    return number


def shape_tuple(owner: str, name: str, value: object) -> tuple[int, ...]:
    """Return `value` as a tuple of positive ints, or raise naming the argument."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Sequence) or not value or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError(
            f"{owner} expects `{name}` to be a tuple of positive integers. Received: {name}={value!r}"
        )
    return tuple(int(v) for v in value)
