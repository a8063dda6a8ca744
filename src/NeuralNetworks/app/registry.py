"""The models the app serves: which files (the shipped ones plus extras), loaded once at start-up."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..budget import Budget
from ..serving import ServedModel, load_model

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SHIPPED_MODELS = {"doodles": PRETRAINED_DIR / "doodles.npz", "digits": PRETRAINED_DIR / "digits.npz"}


def model_paths(extra: Iterable[str | os.PathLike] = (),
                base: Mapping[str, str | os.PathLike] | None = None) -> dict[str, Path]:
    """Name -> file: ``base`` (default: the shipped models that exist) plus ``extra`` files named by their stem
    ("cats.npz" -> "cats"; "cats-2" if that name is taken)."""
    if base is None:
        base = {name: path for name, path in SHIPPED_MODELS.items() if path.is_file()}
    paths = {str(name): Path(path) for name, path in base.items()}
    for path in map(Path, extra):
        name, number = path.stem, 2
        while name in paths:
            name, number = f"{path.stem}-{number}", number + 1
        paths[name] = path
    return paths


def load_models(paths: Mapping[str, str | os.PathLike], budget: Budget | None = None) -> dict[str, ServedModel]:
    """Load every model, checked against ``budget``, failing at start-up (not at the first request) on a missing
    or unusable file."""
    if not paths:
        missing = ", ".join(str(path) for path in SHIPPED_MODELS.values())
        raise ValueError(f"No model to serve: the shipped models are missing ({missing}); "
                         "pass a model file with --model")
    return {str(name): load_model(path, str(name), budget=budget) for name, path in paths.items()}
