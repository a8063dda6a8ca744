"""From a model file and a drawing to its top-k labels: the one path ``NeuralNetworks predict`` and the app share.

Usage::

    from NeuralNetworks import serving
    served = serving.load_model("doodles.npz")                      # the model, its labels and its style
    bitmap = served.preprocess(image=serving.read_image("cat.png"))  # or strokes=[[(x, y), ...]], pixels=...
    served.top_k(bitmap)                                             # [("cat", 0.91), ("fish", 0.04), ...]

The style (how a drawing becomes the 28x28 image the model saw in training) is the model file's
``preprocessing`` entry, else "mnist" for a model whose labels are exactly the digits 0-9, else "quickdraw".
Imports no web framework: the command line uses it without FastAPI installed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .data.images import INK, SIZE, STYLES, EmptyDrawingError, Style, preprocess_image, preprocess_strokes
from .nn import models

DIGIT_LABELS = tuple(str(digit) for digit in range(10))
TOP_K = 3  # labels a prediction lists, best first
DRAWING_KINDS = ("strokes", "image", "pixels")

Strokes = Sequence[Sequence[tuple[float, float]]]


class ImageFileError(ValueError):
    """An image file cannot be read: the message names the file and what was expected."""


def style_for(labels: Sequence[str], declared: object = None) -> Style:
    """The preprocessing a model was trained with: ``declared`` (the file's ``preprocessing`` entry) if it names
    one of ``STYLES``, else ``"mnist"`` for exactly the digits 0-9 and ``"quickdraw"`` for anything else."""
    if declared in STYLES:
        return declared  # type: ignore[return-value]
    return "mnist" if tuple(labels) == DIGIT_LABELS else "quickdraw"


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open and decode an image file (PNG, JPEG, ...); ``ImageFileError`` names the file if it cannot."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such image file") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{path}: not an image file (expected PNG, JPEG, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageFileError(f"{path}: the image cannot be decoded ({error})") from None


def pixels_bitmap(pixels: object) -> np.ndarray:
    """A 28x28 array of 0-255 ink values (white on black, the datasets' format) -> uint8 bitmap."""
    try:
        array = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`pixels` must be a {SIZE}x{SIZE} array of numbers") from None
    if array.shape != (SIZE, SIZE):
        raise ValueError(f"`pixels` must be a {SIZE}x{SIZE} array. Received shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > INK:
        raise ValueError(f"`pixels` values must be finite numbers from 0 (background) to {INK} (ink)")
    bitmap = np.rint(array).astype(np.uint8)
    if not bitmap.any():
        raise EmptyDrawingError("The image has no ink: draw something")
    return bitmap


@dataclass
class ServedModel:
    """A loaded classifier with what it takes to feed it drawings: its name, labels, style and a lock."""

    name: str
    path: Path
    model: models.Sequential
    labels: list[str]
    style: Style
    # Layers may reuse inference buffers (Conv2D does), so one prediction at a time per model.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def preprocess(self, *, strokes: Strokes | None = None, image: Image.Image | np.ndarray | None = None,
                   pixels: object = None) -> np.ndarray:
        """Exactly one drawing -> the (28, 28) uint8 bitmap this model sees, in its style.

        ``strokes``: a list of strokes of (x, y) points, y down, any unit; ``image``: a PIL image or an array
        (any size, either polarity); ``pixels``: a 28x28 array of 0-255 ink, used as it is. Raises
        ``EmptyDrawingError`` for a drawing without ink, ValueError/TypeError for unusable input.
        """
        drawing = {"strokes": strokes, "image": image, "pixels": pixels}
        given = [kind for kind in DRAWING_KINDS if drawing[kind] is not None]
        if len(given) != 1:
            raise TypeError(f"Give exactly one of {', '.join(DRAWING_KINDS)}. Received: {', '.join(given) or 'none'}")
        if strokes is not None:
            return preprocess_strokes(strokes, style=self.style)
        if image is not None:
            return preprocess_image(image, style=self.style)
        return pixels_bitmap(pixels)

    def top_k(self, bitmap: np.ndarray, k: int = TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs for one (28, 28) bitmap, best first."""
        sample = np.asarray(bitmap, dtype=np.float32).reshape(1, *self.model.input_shape)  # models rescale 0-255
        with self.lock:
            scores = self.model.predict(sample)[0].reshape(-1)
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.labels[index], float(scores[index])) for index in best]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "labels": self.labels, "style": self.style}


def load_model(path: str | os.PathLike, name: str | None = None) -> ServedModel:
    """Load a model file for serving (named ``name``, default: the file's stem); raise ModelFileError or
    ValueError if it cannot be fed 28x28 drawings."""
    path = Path(path)
    name = path.stem if name is None else name
    model = models.load(path)
    if model.input_shape is None or int(np.prod(model.input_shape)) != SIZE * SIZE:
        raise ValueError(f"{path}: serving feeds {SIZE}x{SIZE} images, but model {name!r} expects input shape "
                         f"{model.input_shape}")
    outputs = int(np.prod(model.output_shape))
    labels = [str((model.labels or {}).get(index, index)) for index in range(outputs)]
    return ServedModel(name, path, model, labels, style_for(labels, model.preprocessing))
