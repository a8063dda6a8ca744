"""Checks on command-line values before a command starts: numbers in their range, output paths that can be written.

Every flag's domain is stated once, here, and checked before any data is loaded or any training starts, so
that ``--lr 0`` or ``--plot some/folder/`` fails at once with the flag's name, rather than becoming a default
or failing after an hour of training.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


class FlagError(ValueError):
    """A command-line value outside its domain: the message names the flag, the domain and the value."""


MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_THREADS = 1024
MAX_SEED = 2**63 - 1
MAX_PORT = 65_535
# flag -> (smallest, largest) accepted integer; a flag left at None keeps its documented default. (--max-per-class
# is the dataset loader's own size option: the loader checks it, against the budget too, in its own words.)
INTEGER_FLAGS = {"epochs": (1, MAX_EPOCHS), "batch": (1, MAX_BATCH), "patience": (0, MAX_EPOCHS),
                 "threads": (1, MAX_THREADS), "seed": (0, MAX_SEED), "port": (1, MAX_PORT)}
POSITIVE_REAL_FLAGS = ("lr",)
OUTPUT_FILE_FLAGS = ("plot", "confusion", "samples")


def flag_name(attribute: str) -> str:
    return "--" + attribute.replace("_", "-")


def check_numbers(args: argparse.Namespace) -> None:
    """Raise FlagError for the first integer or real flag outside its domain."""
    for attribute, (low, high) in INTEGER_FLAGS.items():
        value = getattr(args, attribute, None)
        if value is not None and not low <= value <= high:
            domain = f"a positive integer at most {high}" if low == 1 else f"an integer from {low} to {high}"
            raise FlagError(f"{flag_name(attribute)} must be {domain}, got {value}")
    for attribute in POSITIVE_REAL_FLAGS:
        value = getattr(args, attribute, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise FlagError(f"{flag_name(attribute)} must be a positive finite number, got {value}")


def output_file(flag: str, path: Path) -> Path:
    """``path`` if a file can be written there: not a folder nor a special file, inside a folder that exists (or
    can be created under one that does) and is writable; else FlagError naming the flag."""
    if path.is_dir():
        raise FlagError(f"{flag} {path}: expected a file name, found a folder")
    if path.exists() and not path.is_file():
        raise FlagError(f"{flag} {path}: expected a file name, found a special file")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise FlagError(f"{flag} {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise FlagError(f"{flag} {path}: the folder {ancestor} is not writable")
    return path


def output_folder(flag: str, path: Path) -> Path:
    """``path`` if a folder can be written there (an existing folder, or a new one); else FlagError."""
    if path.exists() and not path.is_dir():
        raise FlagError(f"{flag} {path}: expected a folder, found a file")
    return output_file(flag, path / "index.html").parent


def check_outputs(args: argparse.Namespace) -> None:
    """Raise FlagError for the first output path given on the command line that cannot be written."""
    for attribute in OUTPUT_FILE_FLAGS:
        value = getattr(args, attribute, None)
        if value is not None:
            output_file(flag_name(attribute), value)
