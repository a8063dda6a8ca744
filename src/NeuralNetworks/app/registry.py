"""The models the app serves: loaded once at start-up, each with its labels and its preprocessing style."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import SIZE, STYLES, Style
from ..nn import models
from ..nn._threads import blas_controller

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SHIPPED_MODELS = {"doodles": PRETRAINED_DIR / "doodles.npz", "digits": PRETRAINED_DIR / "digits.npz"}
DIGIT_LABELS = [str(digit) for digit in range(10)]
TOP_K = 3  # predictions the app returns


@dataclass
class ServedModel:
    """A loaded model with what the app needs to feed it: its name, labels, style and a lock."""

    name: str
    path: Path
    model: models.Sequential
    labels: list[str]
    style: Style
    # Layers may reuse inference buffers (Conv2D does), so one prediction at a time per model.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # One drawing is a small product: a second BLAS thread only adds the wait for it, 8 ms a drawing instead of
    # 0.3 ms when other programs keep the cores busy. Concurrent requests use the other cores instead.
    blas: object | None = field(default_factory=blas_controller, repr=False)

    def predict(self, bitmap: np.ndarray) -> list[tuple[str, float]]:
        """Top-``TOP_K`` (label, probability) pairs for one (28, 28) uint8 bitmap, best first."""
        sample = bitmap.astype(np.float32).reshape(self.model.input_shape)  # models rescale 0-255 themselves
        one_thread = contextlib.nullcontext() if self.blas is None else self.blas.limit(limits=1, user_api="blas")
        with self.lock, one_thread:
            _, scores = self.model(data=sample)
        return [(str(label), float(score)) for label, score in list(scores.items())[:TOP_K]]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "labels": self.labels, "style": self.style}


def style_for(labels: list[str], declared: object = None) -> Style:
    """The preprocessing a model was trained with: the file's ``preprocessing`` entry if it names one of
    ``STYLES``, else ``"mnist"`` for exactly the digits 0-9 and ``"quickdraw"`` for anything else."""
    if declared in STYLES:
        return declared  # type: ignore[return-value]
    return "mnist" if labels == DIGIT_LABELS else "quickdraw"


def load_model(name: str, path: str | os.PathLike) -> ServedModel:
    """Load one model file; raise ModelFileError/ValueError if the app cannot feed it 28x28 images."""
    path = Path(path)
    model = models.load(path)
    if model.input_shape is None or int(np.prod(model.input_shape)) != SIZE * SIZE:
        raise ValueError(f"{path}: the app feeds {SIZE}x{SIZE} images, but model {name!r} expects input shape "
                         f"{model.input_shape}")
    outputs = int(np.prod(model.output_shape))
    labels = [str((model.labels or {}).get(index, index)) for index in range(outputs)]
    return ServedModel(name, path, model, labels, style_for(labels, model.preprocessing))


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


def load_models(paths: Mapping[str, str | os.PathLike]) -> dict[str, ServedModel]:
    """Load every model, failing at start-up (not at the first request) on a missing or unusable file."""
    if not paths:
        missing = ", ".join(str(path) for path in SHIPPED_MODELS.values())
        raise ValueError(f"No model to serve: the shipped models are missing ({missing}); "
                         "pass a model file with --model")
    return {str(name): load_model(str(name), path) for name, path in paths.items()}
