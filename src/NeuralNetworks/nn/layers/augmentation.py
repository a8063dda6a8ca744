"""Random image augmentation, Keras-style: RandomFlip, RandomTranslation, RandomRotation, RandomZoom.

Each layer draws its change per image of a training batch and applies it to the whole batch at once (no loop
over images). The geometric ones draw one affine transform per image: every output pixel ``(x, y)`` (column,
row) reads the input at ``A @ (x, y, 1)`` for its image's 2x3 matrix ``A``, interpolated between the nearest
pixels (``resampling.SamplingPlan``). At inference every layer is the identity (``identity_at_inference = True``),
so a saved model predicts exactly as without them and exporters may drop them.

Arguments follow Keras: factors are fractions (of the height or width, of a full turn, of the size), a single
number ``f`` means the range ``(-f, f)``, and ``fill_mode`` says how the image extends beyond its edges.
The random numbers come from the generator the model hands to its layers (or from ``seed``), so a seeded model
trains bit-identically. A layer with a ``seed`` has a generator of its own: its state is saved with the model
(``random_state`` in the config), so a run resumed from a saved model draws what the uninterrupted run would
have drawn, and a data-parallel trainer gives each process a stream of its own derived from it.

Every factor is bounded where it is accepted, by the constructor, which a model file's config also goes through:
a shift of at most the image's size, a turn of at most ``MAX_TURNS``, a zoom within (-1, ``MAX_ZOOM_OUT``].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._validation import choice, finite_real, optional_seed
from .base import BufferCache, Layer
from .resampling import FILL_MODES, INTERPOLATIONS, SamplingPlan

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
FLIP_PROBABILITY = 0.5  # per image and flipped axis, as in Keras
IMAGE_RANKS = (2, 3)  # a sample is (height, width) or (height, width, channels)
# Zooming out by 1 + z for z up to this shrinks the drawing to 1/11 of its size: beyond it a model would learn
# from specks, and sample coordinates would run past what the resampling's integer indices hold.
MAX_ZOOM_OUT = 10.0
MAX_TURNS = 1.0  # a rotation factor is a fraction of a full turn: beyond one turn either way it only repeats
PCG64_STATE_LIMIT = 2**128  # PCG64 keeps a 128-bit state and increment
UINT32_LIMIT = 2**32

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


def _random_state(owner: str, seed: int | None, value: object) -> dict | None:
    """None, or ``value`` checked as the state of a PCG64 generator (what ``bit_generator.state`` gives)."""
    if value is None:
        return None
    if seed is None:
        raise ValueError(f"{owner} has a `random_state` only with a `seed` (without one it draws from the model's "
                         "generator, saved with the model)")

    def integer(number: object, limit: int) -> bool:
        return isinstance(number, numbers.Integral) and not isinstance(number, bool) and 0 <= number < limit

    inner = value.get("state") if isinstance(value, dict) else None
    if not (isinstance(value, dict) and value.keys() == {"bit_generator", "state", "has_uint32", "uinteger"} and
            value["bit_generator"] == "PCG64" and isinstance(inner, dict) and inner.keys() == {"state", "inc"} and
            all(integer(inner[key], PCG64_STATE_LIMIT) for key in ("state", "inc")) and
            integer(value["has_uint32"], 2) and integer(value["uinteger"], UINT32_LIMIT)):
        raise ValueError(f"{owner} expects `random_state` to be None or a PCG64 generator state "
                         f"(numpy's bit_generator.state). Received: random_state={str(value)[:120]}")
    return {"bit_generator": "PCG64", "state": {"state": int(inner["state"]), "inc": int(inner["inc"])},
            "has_uint32": int(value["has_uint32"]), "uinteger": int(value["uinteger"])}


class RandomImageLayer(Layer):
    """What every augmentation layer shares: image input, its own random draws, identity at inference.

    In training a subclass's ``augment(images)`` changes the ``(n, height, width, channels)`` batch, drawing from
    ``self._rng`` (the model's generator, or one made from ``seed``), and ``augment_backward`` gives the gradient
    through the change it made last. Augmentation normally sits at the input, where the model never asks for
    that gradient, but it is exact, so the layers work anywhere in a network.
    """

    identity_at_inference = True  # exporters may drop this layer: forward(training=False) returns x

    def __init__(self, seed: int | None = None, random_state: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = optional_seed(type(self).__name__, "seed", seed)
        self.random_state = _random_state(type(self).__name__, self.seed, random_state)  # until built
        self._rng: np.random.Generator | None = None
        self._augmented = False

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) not in IMAGE_RANKS:
            raise ValueError(f"{type(self).__name__} expects images of shape (height, width, channels) or "
                             f"(height, width). Received input shape {tuple(input_shape)}")
        return input_shape

    def build(self, input_shape, rng, dtype):
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else rng
        if self.seed is not None and self.random_state is not None:  # where a saved run stopped
            self._rng.bit_generator.state = self.random_state
        return super().build(input_shape, rng, dtype)

    def own_generator(self) -> np.random.Generator | None:
        """The generator this layer draws from when it has a ``seed`` (built), else None (it draws from the
        model's); a data-parallel trainer gives each process its own stream of it for an epoch."""
        return self._rng if self.seed is not None else None

    def augment(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def augment_backward(self, grad_images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _as_images(self, x: np.ndarray) -> np.ndarray:
        height, width = self.input_shape[:2]
        return x.reshape(len(x), height, width, -1)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._augmented = training
        if not training:
            return x
        self.check_batch(x)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
        return self.augment(self._as_images(x).astype(dtype, copy=False)).reshape(x.shape)

    def backward(self, grad_output: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if not input_gradient:  # no weights: nothing else to compute
            return None
        if not self._augmented:  # the last forward was the identity
            return grad_output
        return self.augment_backward(self._as_images(grad_output)).reshape(grad_output.shape)

    def get_config(self) -> dict[str, Any]:
        state = self._rng.bit_generator.state if self.seed is not None and self._rng is not None \
            else self.random_state
        return {**super().get_config(), "seed": self.seed, **({"random_state": state} if state else {})}


class RandomFlip(RandomImageLayer):
    """Mirror each training image left-right and/or top-bottom, each with probability 1/2 (Keras' ``RandomFlip``).

    ``mode`` is "horizontal" (left-right), "vertical" (top-bottom) or "horizontal_and_vertical" (each axis drawn
    on its own). Flips are exact: no interpolation.
    """

    @classmethod
    def example(cls):
        return cls(), (6, 5, 2)

    def __init__(self, mode: str = "horizontal_and_vertical", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = choice("RandomFlip", "mode", mode, FLIP_MODES)
        self._flips: list[tuple[int, np.ndarray]] = []

    def augment(self, images):
        axes = [axis for axis, name in ((2, "horizontal"), (1, "vertical")) if name in self.mode]
        self._flips = [(axis, self._rng.random(len(images)) < FLIP_PROBABILITY) for axis in axes]
        return self._flip(images)

    def augment_backward(self, grad_images):
        return self._flip(grad_images)  # a flip is its own transpose

    def _flip(self, images: np.ndarray) -> np.ndarray:
        out = images.copy()
        for axis, chosen in self._flips:
            out[chosen] = np.flip(out[chosen], axis=axis)
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomAffine2D(RandomImageLayer):
    """Shared machinery of the geometric augmentation layers: subclasses only say which transforms to draw.

    In training, ``transforms(n, height, width)`` returns the ``(n, 2, 3)`` matrices mapping each output pixel
    ``(x, y, 1)`` to where it reads the input (x = column, y = row, pixel centres at integers), and the batch is
    resampled with ``interpolation``. Outside the image the input extends as ``fill_mode`` says ("constant"
    reads ``fill_value``). Backward is exact: the transpose of the resampling.
    """

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear", fill_value: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.fill_mode = choice(owner, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = choice(owner, "interpolation", interpolation, INTERPOLATIONS)
        self.fill_value = finite_real(owner, "fill_value", fill_value)
        self._plan: SamplingPlan | None = None
        self._buffers = BufferCache()

    def build(self, input_shape, rng, dtype):
        if abs(self.fill_value) > float(np.finfo(dtype).max):
            raise ValueError(f"{type(self).__name__} expects a `fill_value` that {np.dtype(dtype)} can hold. "
                             f"Received: fill_value={self.fill_value!r}")
        return super().build(input_shape, rng, dtype)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        """``(n, 2, 3)`` float64 matrices, one per image, drawn from ``self._rng``."""
        raise NotImplementedError

    def augment(self, images):
        n, height, width, _ = images.shape
        self._plan = SamplingPlan(self.transforms(n, height, width), images.shape[1:], self.interpolation,
                                  self.fill_mode, images.dtype, self._buffers)
        return self._plan.apply(images, self.fill_value)

    def augment_backward(self, grad_images):
        return self._plan.transpose(grad_images)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


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

    @classmethod
    def example(cls):
        return cls(0.2, 0.1), (6, 5, 2)

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
    ``(lower, upper)`` within [-1, 1] (a full turn) sets the range; positive angles turn counter-clockwise as the
    image is displayed.
    """

    @classmethod
    def example(cls):
        return cls(0.1), (6, 5)

    def __init__(self, factor: float | Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = _as_range("RandomRotation", "factor", factor, -MAX_TURNS, MAX_TURNS)

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

    @classmethod
    def example(cls):
        return cls(0.1), (6, 5, 1)

    def __init__(self, height_factor: float | Sequence[float], width_factor: float | Sequence[float] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height_factor = _as_range("RandomZoom", "height_factor", height_factor, -1.0, MAX_ZOOM_OUT,
                                       low_open=True)
        self.width_factor = None if width_factor is None else _as_range(
            "RandomZoom", "width_factor", width_factor, -1.0, MAX_ZOOM_OUT, low_open=True)

    def transforms(self, n, height, width):
        vertical = 1 + self._rng.uniform(*self.height_factor, size=n)
        horizontal = vertical if self.width_factor is None else 1 + self._rng.uniform(*self.width_factor, size=n)
        linear = np.zeros((n, 2, 2))
        linear[:, 0, 0], linear[:, 1, 1] = horizontal, vertical
        return _about_centre(linear, height, width)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}
