"""Two-dimensional toy problems, the playground's: XOR, two circles, two spirals, Gaussian blobs, a regression
surface.

Every point lies in the square ``[-EXTENT, EXTENT]^2``; classification labels are 0 or 1 and the regression
target lies in [-1, 1]. One seeded ``numpy.random.Generator`` draws the points, the noise and the train/test
split, so ``make(name, seed=s)`` gives the same arrays on every machine::

    from NeuralNetworks.data import toy
    data = toy.make("spirals", noise=0.1, train_fraction=0.5, seed=0)
    data.x_train.shape, data.y_train.shape    # (250, 2) float32, (250, 1) float32
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import choice, optional_seed, positive_int, real_in_range

EXTENT = 3.0  # points lie in [-EXTENT, EXTENT] on both axes
SAMPLES = 500  # points per problem, training and test together
MAX_SAMPLES = 100_000
NOISE_RANGE = (0.0, 0.5)  # standard deviation of the noise, as a fraction of EXTENT (of the target's range for
# the regression surface)
TRAIN_FRACTION_RANGE = (0.1, 0.9)
CLASSIFICATION, REGRESSION = "classification", "regression"
SPIRAL_TURNS = 0.9  # how far each spiral winds around the centre: the most that the playground's default
# network ([4, 4] tanh, Adam 0.03) learns to >= 95% test accuracy for every seed tried (10 of 10, 3,000 steps)
SPIRAL_START = 0.1  # radius where the spirals begin, as a fraction of EXTENT
CIRCLE_INNER, CIRCLE_GAP = 0.45, 0.15  # the inner class's radius and the empty ring around it, fractions of EXTENT
XOR_MARGIN = 0.05  # XOR's points keep this far from the axes (fraction of EXTENT), so that noise 0 is separable
BLOB_CENTRE, BLOB_SPREAD = 0.45, 0.12  # the blobs' centres at +-(c, c), and their standard deviation at noise 0
DTYPE = np.float32


@dataclass(frozen=True)
class ToyData:
    """A problem's points and targets, split into training and test sets; ``task`` is "classification" (targets
    0 or 1) or "regression" (targets in [-1, 1]); every array has one row per point."""

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-EXTENT, EXTENT, size=(n, 2))


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    points = _uniform(rng, n)
    points += np.sign(points) * XOR_MARGIN * EXTENT * (np.abs(points) < XOR_MARGIN * EXTENT)
    labels = (points[:, 0] * points[:, 1] > 0).astype(DTYPE)
    return points + rng.normal(0.0, noise * EXTENT, size=points.shape), labels


def _circles(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(DTYPE)  # 1: the inner disc, 0: the ring around it
    inner = CIRCLE_INNER * EXTENT
    outer_low = inner + CIRCLE_GAP * EXTENT
    radius = np.where(labels == 1, inner * np.sqrt(rng.uniform(0.0, 1.0, n)),
                      rng.uniform(outer_low, EXTENT, n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points + rng.normal(0.0, noise * EXTENT, size=points.shape), labels


def _spirals(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(DTYPE)
    along = rng.uniform(0.0, 1.0, n)
    radius = EXTENT * (SPIRAL_START + (1 - SPIRAL_START) * along)
    angle = 2 * np.pi * SPIRAL_TURNS * along + np.pi * labels  # the second spiral is the first turned by 180°
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points + rng.normal(0.0, noise * EXTENT, size=points.shape), labels


def _blobs(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(DTYPE)
    centres = np.where(labels[:, None] == 1, BLOB_CENTRE, -BLOB_CENTRE) * EXTENT
    spread = (BLOB_SPREAD + noise) * EXTENT
    return centres + rng.normal(0.0, spread, size=(n, 2)), labels


def surface(points: np.ndarray) -> np.ndarray:
    """The regression target at ``points`` (n, 2): a smooth hill and valley in [-1, 1]."""
    u, v = points[:, 0] / EXTENT, points[:, 1] / EXTENT
    return np.tanh(np.exp(-4 * ((u - 0.35) ** 2 + (v - 0.35) ** 2)) * 2
                   - np.exp(-4 * ((u + 0.4) ** 2 + (v + 0.3) ** 2)) * 2 + 0.5 * u * v)


def _regression(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    points = _uniform(rng, n)
    return points, surface(points) + rng.normal(0.0, noise, size=n)


GENERATORS: dict[str, tuple[str, Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]]] = {
    "xor": (CLASSIFICATION, _xor),
    "circles": (CLASSIFICATION, _circles),
    "spirals": (CLASSIFICATION, _spirals),
    "blobs": (CLASSIFICATION, _blobs),
    "regression": (REGRESSION, _regression),
}
NAMES = tuple(GENERATORS)


def make(name: str, *, noise: float = 0.0, train_fraction: float = 0.5, seed: int = 0,
         samples: int = SAMPLES) -> ToyData:
    """Problem ``name`` (one of ``NAMES``) with ``samples`` points, ``noise`` in ``NOISE_RANGE`` and the first
    ``round(train_fraction * samples)`` points of a seeded shuffle for training, the rest for testing."""
    name = choice("toy.make", "name", name, NAMES)
    noise = real_in_range("toy.make", "noise", noise, *NOISE_RANGE)
    train_fraction = real_in_range("toy.make", "train_fraction", train_fraction, *TRAIN_FRACTION_RANGE)
    seed = optional_seed("toy.make", "seed", seed)
    samples = positive_int("toy.make", "samples", samples)
    if not 2 <= samples <= MAX_SAMPLES:
        raise ValueError(f"toy.make expects `samples` from 2 to {MAX_SAMPLES}. Received: samples={samples}")
    rng = np.random.default_rng(seed)
    task, generate = GENERATORS[name]
    points, targets = generate(rng, samples, noise)
    order = rng.permutation(samples)
    train = min(max(round(train_fraction * samples), 1), samples - 1)
    x = points[order].astype(DTYPE)
    y = targets[order].astype(DTYPE).reshape(-1, 1)
    return ToyData(name, task, x[:train], y[:train], x[train:], y[train:])


def grid(side: int) -> np.ndarray:
    """The centres of a ``side`` x ``side`` grid over the input square, row by row from the top (largest y)
    down and left to right: shape (side * side, 2), as images and heat maps are laid out."""
    side = positive_int("toy.grid", "side", side)
    centres = (np.arange(side) + 0.5) / side * 2 * EXTENT - EXTENT
    ys, xs = np.meshgrid(centres[::-1], centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(DTYPE)
