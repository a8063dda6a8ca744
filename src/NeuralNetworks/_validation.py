"""Argument checks shared by the packages (nn, data): each error names the argument and what it received."""

from __future__ import annotations

import math
import numbers
import os
import re
import reprlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_SEED = 2**128 - 1  # numpy's generators take any non-negative integer; 128 bits is all PCG64 keeps
# A name that becomes a file name (a dataset class): letters of any script, digits, spaces, "_", "-", "'", "."
# and "&", starting with a letter or digit; so never a path separator, "..", a hidden file or a control character.
SAFE_NAME = re.compile(r"[^\W_][\w .'&-]*", re.UNICODE)
MAX_SAFE_NAME_CHARS = 128


def shown(value: object) -> str:
    """``value`` as a message shows it: repr (so a newline or an escape sequence stays visible text), cut short
    (so a huge list or string from a hostile file costs nothing to show)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxtuple = short.maxdict = 6
    short.maxlong, short.maxlevel = 40, 3
    return short.repr(value)


def printable(text: str, max_chars: int = 200) -> str:
    """``text`` cut to ``max_chars`` with every non-printable character escaped: a one-line message part."""
    cut = text[:max_chars] + ("..." if len(text) > max_chars else "")
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in cut)


def first_line(problem: BaseException) -> str:
    """What an exception says, as one printable line (its class name if it says nothing)."""
    text = str(problem).strip()
    return printable(text.splitlines()[0]) if text else type(problem).__name__


class WrongTypeError(TypeError, ValueError):
    """An argument of the wrong type (a string or NaN where a number is expected): a TypeError, and a ValueError
    for callers that treat every bad argument alike."""


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
        raise WrongTypeError(f"{owner} expects a real number `{name}`. Received: {name}={value!r}")
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


def choice(owner: str, name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` lower-cased if it names one of ``choices`` (any case), else raise naming them."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{owner} expects `{name}` to be one of {', '.join(choices)}. Received: {name}={value!r}")
    return value.lower()


def boolean(owner: str, name: str, value: object) -> bool:
    """Return ``value`` as a bool: True/False (also NumPy's) or the integers 0 and 1; anything else raises,
    so that a string such as "false" is never read as True."""
    if isinstance(value, bool | np.bool_) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise WrongTypeError(f"{owner} expects `{name}` to be True or False. Received: {name}={value!r}")


def finite_real(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise naming the argument (NaN, infinities, strings, bools)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise WrongTypeError(f"{owner} expects a finite real number `{name}`. Received: {name}={value!r}")
    return float(value)


def optional_seed(owner: str, name: str, value: object) -> int | None:
    """None, or ``value`` as an int in [0, 2**128): what a seed may be."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{owner} expects `{name}` to be None or an integer from 0 to 2**128 - 1. "
                         f"Received: {name}={value!r}")
    return int(value)


def text(owner: str, name: str, value: object, max_chars: int, *, allow_empty: bool = False) -> str:
    """Return ``value`` if it is a string of at most ``max_chars`` printable characters (no control
    characters, which could rewrite a terminal when printed); else raise naming the argument."""
    if not isinstance(value, str) or len(value) > max_chars or (not value and not allow_empty) or \
            not value.isprintable():
        raise ValueError(f"{owner} expects `{name}` to be a {'' if allow_empty else 'non-empty '}string of at most "
                         f"{max_chars} printable characters. Received: {name}={shown(value)}")
    return value


def safe_name(owner: str, name: str, value: object) -> str:
    """Return ``value`` if it may become a file name inside a folder (see ``SAFE_NAME``); else raise."""
    if not isinstance(value, str) or len(value) > MAX_SAFE_NAME_CHARS or SAFE_NAME.fullmatch(value) is None:
        raise ValueError(f"{owner} expects `{name}` to be a name of letters, digits, spaces and _ - ' . & "
                         f"(at most {MAX_SAFE_NAME_CHARS} characters, starting with a letter or digit; no path "
                         f"separators). Received: {name}={value!r}")
    return value


def path_inside(folder: str | os.PathLike, file_name: str) -> Path:
    """``folder / file_name``, once it is certain to resolve inside ``folder`` (symlinks included)."""
    base = Path(folder).resolve()
    target = (base / file_name).resolve()
    if target.parent != base:
        raise ValueError(f"{file_name!r} would resolve to {target}, outside the folder {base}")
    return Path(folder) / file_name
