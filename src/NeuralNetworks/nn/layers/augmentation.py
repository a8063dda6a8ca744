"""Random image augmentation, Keras-style: RandomTranslation, RandomRotation, RandomZoom.

Each layer draws one random affine transform per image of a training batch and resamples the whole batch at
once (no loop over images): every output pixel ``(x, y)`` (column, row) reads the input at
``A @ (x, y, 1)`` for its image's 2x3 matrix ``A``, interpolated between the nearest pixels. At inference the
layers are the identity (``inference_identity = True``), so a saved model predicts exactly as without them and
exporters may drop them.

Arguments follow Keras: factors are fractions (of the height or width, of a full turn, of the size), a single
number ``f`` means the range ``(-f, f)``, and ``fill_mode`` says how the image extends beyond its edges.
The random numbers come from the generator the model hands to its layers (or from ``seed``), so a seeded model
trains bit-identically.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Layer
from .convolution import BufferCache

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")
IMAGE_RANKS = (2, 3)  # a sample is (height, width) or (height, width, channels)

Range = tuple[float, float]


def _as_range(owner: str, name: str, value: object, low: float = -math.inf, high: float = math.inf,
              low_open: bool = False) -> Range:
    """Keras' factor convention: ``f >= 0`` -> ``(-f, f)``; a pair ``(lower, upper)`` with lower <= upper.

    Both ends must lie in [low, high] (``low`` excluded with ``low_open``); the message names what was wrong.
    """
    def real(number: object) -> float:
        if isinstance(number, bool) or not isinstance(number, numbers.Real) or not math.isfinite(number):
            raise ValueError(f"{owner} expects `{name}` to be a number or a pair (lower, upper) of numbers. "
                             f"Received: {name}={value!r}")
        return float(number)

    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"{owner} expects `{name}` to be a number or a pair (lower, upper). "
                             f"Received: {name}={value!r}")
        lower, upper = real(value[0]), real(value[1])
    else:
        upper = real(value)
        if upper < 0:
            raise ValueError(f"{owner} expects a single `{name}` to be >= 0 (it means the range (-{name}, "
                             f"{name})); give a pair (lower, upper) for another range. Received: {name}={value!r}")
        lower = -upper
    if lower > upper:
        raise ValueError(f"{owner} expects `{name}` as (lower, upper) with lower <= upper. Received: {name}={value!r}")
    too_low = lower <= low if low_open else lower < low
    if too_low or upper > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{owner} expects `{name}` within {bracket}{low}, {high}]. Received: {name}={value!r}")
    return lower, upper


def _choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{owner} expects `{name}` to be one of {', '.join(choices)}. Received: {name}={value!r}")
    return value.lower()


PAD = 2  # pixels added around each image so that every interpolation corner of a folded coordinate is inside
NUMPY_PAD_MODES = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}
BILINEAR_CORNERS = 4


def _fold(coordinate: np.ndarray, size: int, fill_mode: str, scratch: np.ndarray) -> None:
    """Move continuous source coordinates (pixel centres at 0 .. size - 1), in place, to equivalent ones at most
    two pixels outside the image, where the padding holds the extension ``fill_mode`` describes: reflect
    ``(d c b a | a b c d | d c b a)`` folds about the outer pixel edges, wrap is periodic, nearest repeats the
    edge pixel, and constant keeps a border of ``fill_value`` (anything further out reads the same border)."""
    if fill_mode == "constant":
        np.clip(coordinate, -1, size, out=coordinate)
        return
    if fill_mode == "nearest":
        np.clip(coordinate, 0, size - 1, out=coordinate)
        return
    # c mod period, as c - period * floor(c / period): several times faster than np.mod on floats
    period, shift = (size, 0.0) if fill_mode == "wrap" else (2 * size, 0.5)
    coordinate += shift
    np.multiply(coordinate, 1 / period, out=scratch)
    np.floor(scratch, out=scratch)
    scratch *= period
    coordinate -= scratch
    coordinate -= shift
    if fill_mode == "reflect":  # the second half of the period is the mirror image
        np.subtract(2 * size - 1, coordinate, out=coordinate, where=coordinate > size - 0.5)


class SamplingPlan:
    """Where each output value reads the padded input, and with what weight:
    ``out = sum_k weights[k] * padded[indices[k]]``, the batch padded by ``PAD`` pixels as ``fill_mode`` says.

    ``indices`` and ``weights`` are ``(corners, n * h * w)``: one row per interpolation corner (4 bilinear, 1
    nearest), indices into the padded batch flattened to ``(n * (h + 2 PAD) * (w + 2 PAD), channels)``. The
    plan is linear in the input, so backward is its transpose: each output gradient goes back to the pixels it
    read, times the weight, and padding pixels hand theirs to the image pixels they copy.

    Every array lives in ``buffers``, reused from batch to batch: allocating (and page-faulting) the dozen
    batch-sized temporaries afresh made the plan 5x slower.
    """

    def __init__(self, matrices: np.ndarray, image_shape: tuple[int, int, int], interpolation: str,
                 fill_mode: str, dtype: np.dtype, buffers: BufferCache) -> None:
        n = len(matrices)
        height, width, _ = image_shape
        self.image_shape, self.fill_mode, self.buffers = image_shape, fill_mode, buffers
        self.padded_shape = (n, height + 2 * PAD, width + 2 * PAD)
        padded_width = width + 2 * PAD
        index_type = np.int32 if np.prod(self.padded_shape) < np.iinfo(np.int32).max else np.intp
        shape = (n, height, width)
        m = matrices.astype(dtype)[:, :, :, np.newaxis, np.newaxis]  # (n, 2, 3, 1, 1): broadcast over pixels
        columns, rows = np.arange(width, dtype=dtype), np.arange(height, dtype=dtype)[:, np.newaxis]
        source_x, source_y = buffers.get("source_x", shape, dtype), buffers.get("source_y", shape, dtype)
        np.add(m[:, 0, 0] * columns, m[:, 0, 1] * rows + m[:, 0, 2], out=source_x)
        np.add(m[:, 1, 0] * columns, m[:, 1, 1] * rows + m[:, 1, 2], out=source_y)
        left, top = buffers.get("left", shape, dtype), buffers.get("top", shape, dtype)
        _fold(source_x, width, fill_mode, scratch=left)
        _fold(source_y, height, fill_mode, scratch=top)
        # the padded pixel each output's first corner reads: image start + (row + PAD) * padded width + column + PAD
        first_pixel = (np.arange(n, dtype=index_type) * (self.padded_shape[1] * padded_width)
                       + PAD * padded_width + PAD).reshape(n, 1, 1)
        if interpolation == "nearest":
            source_x += 0.5
            source_y += 0.5
        np.floor(source_x, out=left)
        np.floor(source_y, out=top)
        corners = 1 if interpolation == "nearest" else BILINEAR_CORNERS
        self.indices = buffers.get(f"indices_{corners}", (corners, n * height * width), index_type)
        first = self.indices[0].reshape(shape)
        np.multiply(top, padded_width, out=first, casting="unsafe")
        np.add(first, left, out=first, casting="unsafe")
        first += first_pixel
        if interpolation == "nearest":
            self.weights = None
            return
        for k, offset in enumerate((1, padded_width, padded_width + 1), start=1):
            np.add(self.indices[0], offset, out=self.indices[k])
        fx, fy = np.subtract(source_x, left, out=source_x).reshape(-1), np.subtract(source_y, top, out=source_y)
        fy = fy.reshape(-1)
        gx, gy = np.subtract(1, fx, out=left.reshape(-1)), np.subtract(1, fy, out=top.reshape(-1))
        self.weights = buffers.get("weights", (BILINEAR_CORNERS, n * height * width), dtype)
        for k, (wx, wy) in enumerate(((gx, gy), (fx, gy), (gx, fy), (fx, fy))):
            np.multiply(wx, wy, out=self.weights[k])

    def _border(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the padding pixels in one padded image, and the image pixel each copies (-1: none)."""
        height, width, _ = self.image_shape
        source = np.pad(np.arange(height * width).reshape(height, width), PAD,
                        mode=NUMPY_PAD_MODES[self.fill_mode],
                        **({"constant_values": -1} if self.fill_mode == "constant" else {})).reshape(-1)
        inside = np.zeros(self.padded_shape[1:], dtype=bool)
        inside[PAD:PAD + height, PAD:PAD + width] = True
        border = np.flatnonzero(~inside.reshape(-1))
        return border, source[border]

    def apply(self, x: np.ndarray, fill_value: float) -> np.ndarray:
        """Resample the batch ``x`` ``(n, h, w, channels)``: the transformed images, a new array."""
        n, height, width, channels = x.shape
        padded = self.buffers.get(f"padded_{fill_value}", (*self.padded_shape, channels), x.dtype,
                                  fill=fill_value)  # a constant border is written once, here, and kept
        padded[:, PAD:PAD + height, PAD:PAD + width] = x
        if self.fill_mode != "constant":
            border, source = self._border()
            padded.reshape(n, -1, channels)[:, border] = x.reshape(n, -1, channels)[:, source]
        flat = padded.reshape(-1, channels)
        if self.weights is None:
            return flat[self.indices[0]].reshape(x.shape)
        out = flat[self.indices[0]]
        out *= self.weights[0][:, np.newaxis]
        corner = self.buffers.get("corner", out.shape, out.dtype)
        for indices, weights in zip(self.indices[1:], self.weights[1:], strict=True):
            np.take(flat, indices, axis=0, out=corner)
            corner *= weights[:, np.newaxis]
            out += corner
        return out.reshape(x.shape)

    def transpose(self, grad_output: np.ndarray) -> np.ndarray:
        """The gradient at the input ``(n, h, w, channels)`` for the output gradient of the same shape."""
        n, height, width, channels = grad_output.shape
        border, source = self._border()
        copies = source >= 0  # constant borders copy nothing: their gradient goes nowhere
        inside = (slice(None), slice(PAD, PAD + height), slice(PAD, PAD + width))
        copied_to = (np.arange(n)[:, np.newaxis] * (height * width) + source[copies]).reshape(-1)
        grad_input = np.empty(grad_output.shape, dtype=grad_output.dtype)
        grad_flat = grad_output.reshape(-1, channels)
        indices = self.indices.reshape(-1)
        for channel in range(channels):
            weighted = grad_flat[:, channel] if self.weights is None else self.weights * grad_flat[:, channel]
            grad_padded = np.bincount(indices, weights=weighted.reshape(-1), minlength=np.prod(self.padded_shape))
            grad_padded = grad_padded.reshape(self.padded_shape)
            from_border = grad_padded.reshape(n, -1)[:, border[copies]].reshape(-1)
            grad_input[..., channel] = grad_padded[inside] + np.bincount(
                copied_to, weights=from_border, minlength=n * height * width).reshape(n, height, width)
        return grad_input


class RandomAffine2D(Layer):
    """Shared machinery of the augmentation layers: subclasses only say which transforms to draw.

    Identity at inference (``inference_identity``); in training, ``transforms(n, height, width)`` returns the
    ``(n, 2, 3)`` matrices mapping each output pixel ``(x, y, 1)`` to where it reads the input (x = column,
    y = row, pixel centres at integers), and the batch is resampled with ``interpolation``. Outside the image the
    input extends as ``fill_mode`` says ("constant" reads ``fill_value``). Backward is exact: the transpose of
    the resampling (augmentation normally sits at the input, where the model never asks for it).
    """

    inference_identity = True  # exporters and inference drop this layer: forward(training=False) returns x

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.fill_mode = _choice(owner, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = _choice(owner, "interpolation", interpolation, INTERPOLATIONS)
        if isinstance(fill_value, bool) or not isinstance(fill_value, numbers.Real) or not math.isfinite(fill_value):
            raise ValueError(f"{owner} expects a finite number `fill_value`. Received: fill_value={fill_value!r}")
        self.fill_value = float(fill_value)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"{owner} expects an integer `seed` or None. Received: seed={seed!r}")
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._plan: SamplingPlan | None = None
        self._buffers = BufferCache()

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) not in IMAGE_RANKS:
            raise ValueError(f"{type(self).__name__} expects images of shape (height, width, channels) or "
                             f"(height, width). Received input shape {tuple(input_shape)}")
        return input_shape

    def build(self, input_shape, rng, dtype):
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else rng
        return super().build(input_shape, rng, dtype)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        """``(n, 2, 3)`` float64 matrices, one per image, drawn from ``self._rng``."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._plan = None
        if not training:
            return x
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ValueError(f"{self.name or type(self).__name__} expects a batch of shape "
                             f"(n, {', '.join(map(str, self.input_shape))}). Received an array of shape {x.shape}")
        height, width = self.input_shape[:2]
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
        images = x.reshape(len(x), height, width, -1).astype(dtype, copy=False)
        self._plan = SamplingPlan(self.transforms(len(x), height, width), images.shape[1:], self.interpolation,
                                  self.fill_mode, dtype, self._buffers)
        return self._plan.apply(images, self.fill_value).reshape(x.shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._plan is None:  # the last forward was the identity
            return grad_output
        height, width = self.input_shape[:2]
        images = grad_output.reshape(len(grad_output), height, width, -1)
        return self._plan.transpose(images).reshape(grad_output.shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "seed": self.seed, "fill_value": self.fill_value}


def _about_centre(linear: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(n, 2, 3)`` matrices applying the ``(n, 2, 2)`` ``linear`` maps about the image centre."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre - linear @ centre
    return np.concatenate([linear, offset[:, :, np.newaxis]], axis=2)


class RandomTranslation(RandomAffine2D):
    """Shift each training image by a random fraction of its height and width (Keras' ``RandomTranslation``).

    ``height_factor=0.1`` shifts by up to 10% of the height up or down (positive = down), ``width_factor`` the
    same for left/right (positive = right); a pair ``(lower, upper)`` sets an asymmetric range. Shifts are
    continuous, so bilinear interpolation moves strokes by sub-pixel amounts too.
    """

    def __init__(self, height_factor: float | Sequence[float], width_factor: float | Sequence[float],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height_factor = _as_range("RandomTranslation", "height_factor", height_factor, -1.0, 1.0)
        self.width_factor = _as_range("RandomTranslation", "width_factor", width_factor, -1.0, 1.0)

    def transforms(self, n, height, width):
        down = self._rng.uniform(*self.height_factor, size=n) * height
        right = self._rng.uniform(*self.width_factor, size=n) * width
        matrices = np.zeros((n, 2, 3))
        matrices[:, 0, 0] = matrices[:, 1, 1] = 1
        matrices[:, 0, 2], matrices[:, 1, 2] = -right, -down  # the pixel at x reads the input at x - shift
        return matrices

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}


class RandomRotation(RandomAffine2D):
    """Rotate each training image about its centre by a random angle (Keras' ``RandomRotation``).

    ``factor`` is a fraction of a full turn: ``factor=0.05`` rotates by up to 18 degrees either way, a pair
    ``(lower, upper)`` sets the range; positive angles turn counter-clockwise as the image is displayed.
    """

    def __init__(self, factor: float | Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = _as_range("RandomRotation", "factor", factor)

    def transforms(self, n, height, width):
        angle = self._rng.uniform(*self.factor, size=n) * (2 * math.pi)
        cos, sin = np.cos(angle), np.sin(angle)
        # Rows point down, so the output pixel reads the input rotated the other way: [[cos, -sin], [sin, cos]].
        linear = np.stack([np.stack([cos, -sin], axis=1), np.stack([sin, cos], axis=1)], axis=1)
        return _about_centre(linear, height, width)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(RandomAffine2D):
    """Zoom each training image in or out about its centre by a random amount (Keras' ``RandomZoom``).

    ``height_factor=0.2`` scales the content by ``1 / (1 + z)`` for ``z`` uniform in [-0.2, 0.2]: positive ``z``
    zooms out (smaller drawing), negative zooms in. ``width_factor=None`` (the default) uses the height's ``z``
    for the width too, keeping the aspect ratio; a number or pair zooms the width independently.
    """

    def __init__(self, height_factor: float | Sequence[float], width_factor: float | Sequence[float] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height_factor = _as_range("RandomZoom", "height_factor", height_factor, -1.0, math.inf, low_open=True)
        self.width_factor = None if width_factor is None else _as_range(
            "RandomZoom", "width_factor", width_factor, -1.0, math.inf, low_open=True)

    def transforms(self, n, height, width):
        vertical = 1 + self._rng.uniform(*self.height_factor, size=n)
        horizontal = vertical if self.width_factor is None else 1 + self._rng.uniform(*self.width_factor, size=n)
        linear = np.zeros((n, 2, 2))
        linear[:, 0, 0], linear[:, 1, 1] = horizontal, vertical
        return _about_centre(linear, height, width)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}
