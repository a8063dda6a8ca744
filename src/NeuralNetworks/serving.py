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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ._files import open_regular
from ._validation import first_line, positive_int
from .budget import DEFAULT_BUDGET, Budget
from .data import folder as image_folder
from .data import preprocessing as specs
from .data.images import (
    INK,
    MIN_IMAGE_SIDE,
    SIZE,
    STYLES,
    EmptyDrawingError,
    Style,
    preprocess_image,
    preprocess_strokes,
)
from .nn import models

DIGIT_LABELS = tuple(str(digit) for digit in range(10))
TOP_K = 3  # labels a prediction lists, best first
DRAWING_KINDS = ("strokes", "image", "pixels")
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # the decoders Pillow may use on an image from outside

Strokes = Sequence[Sequence[tuple[float, float]]]


class ImageFileError(ValueError):
    """An image file cannot be read: the message names the file and what was expected."""


class UnreadableImageError(ValueError):
    """The bytes are not an image in one of ``IMAGE_FORMATS``."""


class DamagedImageError(ValueError):
    """The image's header was read, its pixels could not be decoded (truncated or corrupt)."""


def style_for(labels: Sequence[str], declared: object = None) -> Style:
    """The preprocessing a model was trained with: ``declared`` (the file's ``preprocessing`` entry) if it names
    one of ``STYLES``, else ``"mnist"`` for exactly the digits 0-9 and ``"quickdraw"`` for anything else."""
    if declared in STYLES:
        return declared  # type: ignore[return-value]
    return "mnist" if tuple(labels) == DIGIT_LABELS else "quickdraw"


def open_image(source: BinaryIO, budget: Budget, max_side: int | None = None) -> Image.Image:
    """Open an encoded image (one of ``IMAGE_FORMATS``) and check its size from the header, before decoding its
    first frame: at most ``budget.max_image_pixels`` pixels (and ``max_side`` a side, if given), at least
    ``MIN_IMAGE_SIDE`` a side. Raises ValueError (ImageFileError from ``read_image``) naming what was wrong."""
    try:
        with warnings.catch_warnings():  # Pillow warns about big images; the budget below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source, formats=IMAGE_FORMATS)
    except Exception:  # Pillow's decoders are not all written for hostile input: whatever they raise, unreadable
        raise UnreadableImageError(f"expected one of: {', '.join(IMAGE_FORMATS)}") from None
    width, height = image.size
    if max_side is not None and max(width, height) > max_side:
        raise ValueError(f"the image is too large: at most {max_side}x{max_side} pixels. Received {width}x{height}")
    if width * height > budget.max_image_pixels:
        raise ValueError(f"the image is {width}x{height} pixels, more than the budget's max_image_pixels "
                         f"({budget.max_image_pixels})")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ValueError(f"the image is too small to hold a drawing: at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
                         f"pixels. Received {width}x{height}")
    try:
        image.load()
    except Exception as error:
        raise DamagedImageError(first_line(error)) from None
    return image


def read_image(path: str | os.PathLike, *, budget: Budget | None = None) -> Image.Image:
    """Open and decode an image file (see ``open_image``); ``ImageFileError`` names the file if it cannot."""
    with open_regular(path, ImageFileError, "image file") as handle:
        try:
            return open_image(handle, budget or DEFAULT_BUDGET)
        except UnreadableImageError as error:
            raise ImageFileError(f"{path}: not an image file ({error})") from None
        except DamagedImageError as error:
            raise ImageFileError(f"{path}: the image cannot be decoded ({error})") from None
        except ValueError as error:
            raise ImageFileError(f"{path}: {error}") from None


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


def pixels_sample(pixels: object, shape: tuple[int, ...]) -> np.ndarray:
    """An array of 0-255 values of an image model's input ``shape`` (or without its channel axis, when grey)."""
    try:
        array = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`pixels` must be an array of numbers of shape {shape}") from None
    if array.shape == shape[:2] and shape[2] == 1:
        array = array[:, :, None]
    if array.shape != shape:
        raise ValueError(f"`pixels` must be an array of shape {shape}. Received shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > INK:
        raise ValueError(f"`pixels` values must be finite numbers from 0 to {INK}")
    return np.rint(array).astype(np.uint8)


@dataclass
class ServedModel:
    """A loaded classifier with what it takes to feed it drawings: its name, labels, style and a lock."""

    name: str
    path: Path
    model: models.Model
    labels: list[str]
    style: Style
    budget: Budget = DEFAULT_BUDGET  # what a drawing sent to it may claim (points, coordinates)
    spec: dict | None = None  # an image spec (a model trained on an image folder); None: a 28x28 drawing model
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
        if self.spec is not None:
            if strokes is not None:
                return image_folder.strokes_sample(preprocess_strokes(strokes, budget=self.budget), self.spec)
            if image is not None:
                if not isinstance(image, Image.Image):
                    image = Image.fromarray(np.asarray(image, dtype=np.uint8))
                return image_folder.prepare_image(image, self.spec)
            return pixels_sample(pixels, self.sample_shape)
        if strokes is not None:
            return preprocess_strokes(strokes, style=self.style, budget=self.budget)
        if image is not None:
            return preprocess_image(image, style=self.style)
        return pixels_bitmap(pixels)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """What ``preprocess`` returns: (28, 28) for a drawing model, (height, width, channels) for an image spec."""
        return (SIZE, SIZE) if self.spec is None else tuple(self.model.input_shape)

    def top_k(self, bitmap: np.ndarray, k: int = TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs for one bitmap (``sample_shape``), best first."""
        k = positive_int("top_k", "k", k)
        sample = np.asarray(bitmap)
        if sample.shape != self.sample_shape or sample.dtype.kind not in "buif":
            raise ValueError(f"top_k expects a {self.sample_shape} bitmap of numbers. Received an array of shape "
                             f"{sample.shape} and dtype {sample.dtype}")
        sample = sample.astype(np.float32).reshape(1, *self.model.input_shape)  # models rescale 0-255
        # The BLAS thread count is the process's: never changed here, per request (concurrent requests on two
        # models would undo each other's limit); a server chooses it once (``app.run``: one thread).
        with self.lock:
            scores = self.model.predict(sample)[0].reshape(-1)
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.labels[index], float(scores[index])) for index in best]

    def scores(self, bitmap: np.ndarray) -> dict[str, float]:
        """Every label's probability for one bitmap, in label order."""
        ranked = dict(self.top_k(bitmap, k=len(self.labels)))
        return {label: ranked[label] for label in self.labels}

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "labels": self.labels, "style": self.style}


def load_model(path: str | os.PathLike, name: str | None = None, *, budget: Budget | None = None) -> ServedModel:
    """Load a model file for serving (named ``name``, default: the file's stem), checked against ``budget``;
    raise ModelFileError or ValueError if it cannot be fed images: a 28x28 drawing model, or a model of any
    image size with 1 or 3 channels trained on an image folder (its image spec says how to prepare them)."""
    path = Path(path)
    name = path.stem if name is None else name
    model = models.load(path, budget=budget)
    if isinstance(model.input_shape, list) or isinstance(model.output_shape, list):
        raise ValueError(f"{path}: serving feeds one drawing to a model of one input and one output; model "
                         f"{name!r} has {len(model.graph.input_shapes)} inputs and {len(model.graph.outputs)} outputs")
    if specs.kind(model.preprocessing) == specs.TABLE_KIND:
        raise ValueError(f"{path}: model {name!r} predicts from table rows, not images; give it a CSV file")
    image_spec = specs.image_spec_for(model.preprocessing, model.input_shape)
    if image_spec is not None:
        outputs = int(np.prod(model.output_shape))
        labels = [str((model.labels or {}).get(index, index)) for index in range(outputs)]
        return ServedModel(name, path, model, labels, "quickdraw", budget or DEFAULT_BUDGET, spec=image_spec)
    if model.input_shape is None or int(np.prod(model.input_shape)) != SIZE * SIZE:
        raise ValueError(f"{path}: serving feeds {SIZE}x{SIZE} images, but model {name!r} expects input shape "
                         f"{model.input_shape}")
    outputs = int(np.prod(model.output_shape))
    labels = [str((model.labels or {}).get(index, index)) for index in range(outputs)]
    return ServedModel(name, path, model, labels, style_for(labels, model.preprocessing), budget or DEFAULT_BUDGET)
