"""The built-in "shapes" doodle set: hand-drawn-looking geometric shapes, generated on the fly, offline.

Each drawing is made of strokes, lists of (x, y) points, as a person would draw them on a canvas: wobbly
lines, shapes left slightly open or overshot, random rotation, aspect and stroke count. The strokes then
go through ``images.render_strokes``, the very code that turns the app's canvas into model input, with a
random line width, so the bitmaps look like QuickDraw's ``numpy_bitmap`` drawings. Every drawing has its own
random generator keyed by (seed, split, class, index): the same seed always gives the same arrays.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from .._validation import non_negative_int, real_in_range
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from .errors import DataError
from .images import render_strokes
from .splits import LABEL_DTYPE, Dataset, shuffled

Stroke = np.ndarray  # (points, 2) float64, x right and y down like a screen
Drawing = list[Stroke]

POINT_SPACING = 0.2  # between consecutive points of a stroke, in units of the shape's radius (~1)
WOBBLE = 0.06  # amplitude of the slow drift of a hand-drawn line, in units of the radius
JITTER = 0.012  # per-point tremor, in units of the radius
CORNER_NOISE = 0.07  # how far a drawn corner misses the ideal one, in units of the radius
LINE_WIDTH_RANGE = (10.0, 22.0)  # in QuickDraw's 256-unit space, where the dataset uses 16
ASPECT_RANGE = 0.4  # log of the largest horizontal / vertical stretch
DEFAULT_SAMPLES_PER_CLASS = 1000
DEFAULT_TEST_FRACTION = 0.2
SPLIT_KEYS = {"train": 0, "test": 1}
IMAGE_SIDE = 28


def _densify(corners: np.ndarray, spacing: float = POINT_SPACING) -> np.ndarray:
    """Points every ``spacing`` along the polyline through ``corners`` (corners kept), like a sampled pen."""
    pieces = []
    for start, end in zip(corners[:-1], corners[1:], strict=True):
        steps = max(int(np.ceil(np.hypot(*(end - start)) / spacing)), 1)
        pieces.append(start + (end - start) * np.linspace(0, 1, steps, endpoint=False)[:, np.newaxis])
    return np.vstack([*pieces, corners[-1:]])


def _hand_drawn(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add the slow drift (two random sinusoids along the stroke) and the tremor of a human hand."""
    progress = np.linspace(0.0, 1.0, len(points))[:, np.newaxis]
    frequencies = rng.uniform(0.5, 2.0, (2, 1, 2))
    phases = rng.uniform(0, 2 * np.pi, (2, 1, 2))
    drift = WOBBLE * np.sin(2 * np.pi * frequencies * progress + phases).sum(axis=0)
    return points + drift + rng.normal(0, JITTER, points.shape)


def _arc(rng: np.random.Generator, radius_of_angle: Callable[[np.ndarray], np.ndarray], turns: float) -> Stroke:
    start = rng.uniform(0, 2 * np.pi)
    count = max(int(turns * 2 * np.pi / POINT_SPACING), 8)
    angles = start + np.linspace(0, turns * 2 * np.pi, count)
    radii = radius_of_angle(angles - start)
    return np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])


def _closed_polygon(rng: np.random.Generator, corners: np.ndarray) -> Stroke:
    """One stroke around ``corners`` from a random one, ending a little short of or past the start."""
    corners = np.roll(corners, -rng.integers(len(corners)), axis=0)
    corners = corners + rng.normal(0, CORNER_NOISE, corners.shape)
    path = _densify(np.vstack([corners, corners[:1]]))
    end = len(path) - 1 + int(rng.integers(-2, 3))  # stop short (open shape) or draw on (overlap)
    return path[:end] if end < len(path) else np.vstack([path, path[1:end - len(path) + 2]])


def circle(rng: np.random.Generator) -> Drawing:
    return [_arc(rng, lambda a: np.ones_like(a), turns=1 + rng.uniform(-0.1, 0.15))]


def spiral(rng: np.random.Generator) -> Drawing:
    turns = rng.uniform(1.7, 3.2)
    inner = rng.uniform(0.0, 0.15)
    stroke = _arc(rng, lambda a: inner + (1 - inner) * a / (turns * 2 * np.pi), turns)
    return [stroke if rng.random() < 0.5 else stroke[::-1]]


def square(rng: np.random.Generator) -> Drawing:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    if rng.random() < 0.25:  # two L-shaped strokes, as many people draw a box
        return [_densify(corners[:3] + rng.normal(0, CORNER_NOISE, (3, 2))),
                _densify(np.vstack([corners[2:], corners[:1]]) + rng.normal(0, CORNER_NOISE, (3, 2)))]
    return [_closed_polygon(rng, corners)]


def triangle(rng: np.random.Generator) -> Drawing:
    apex = rng.uniform(-0.4, 0.4)
    return [_closed_polygon(rng, np.array([[apex, -1], [1, 0.8], [-1, 0.8]]))]


def star(rng: np.random.Generator) -> Drawing:
    tips = -np.pi / 2 + np.arange(5) * 2 * np.pi / 5
    if rng.random() < 0.5:  # the one-stroke pentagram
        order = tips[[0, 2, 4, 1, 3]]
        return [_closed_polygon(rng, np.column_stack([np.cos(order), np.sin(order)]))]
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5  # the outline: tips and inner corners alternate
    radii = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.3, 0.6))
    return [_closed_polygon(rng, np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]))]


def heart(rng: np.random.Generator) -> Drawing:
    t = np.linspace(0, 2 * np.pi, int(2 * np.pi / POINT_SPACING) * 2)
    x = 16 * np.sin(t) ** 3 / 16
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) / 16
    outline = np.column_stack([x, y])
    if rng.random() < 0.4:  # two halves from the top dip down to the point, mirror images
        half = len(outline) // 2
        return [outline[:half + 1], outline[half:]]
    end = len(outline) + int(rng.integers(-3, 2))
    return [np.roll(outline, -rng.integers(len(outline)), axis=0)[:end]]


def cross(rng: np.random.Generator) -> Drawing:
    horizontal_y, vertical_x = rng.uniform(-0.3, 0.3, 2)
    horizontal = np.array([[-1, horizontal_y], [1, horizontal_y + rng.normal(0, 0.1)]])
    vertical = np.array([[vertical_x, -1], [vertical_x + rng.normal(0, 0.1), 1]])
    strokes = [_densify(horizontal), _densify(vertical)]
    return [stroke if rng.random() < 0.8 else stroke[::-1] for stroke in strokes]


def zigzag(rng: np.random.Generator) -> Drawing:
    teeth = int(rng.integers(3, 7))
    x = np.linspace(-1, 1, teeth + 1) + rng.normal(0, 0.04, teeth + 1)
    y = np.where(np.arange(teeth + 1) % 2 == 0, -1.0, 1.0) * rng.uniform(0.3, 0.6)
    return [_densify(np.column_stack([x, y]))]


SHAPES: dict[str, tuple[Callable[[np.random.Generator], Drawing], float]] = {
    # name: (generator, largest rotation in degrees; beyond it a shape would read as another one)
    "circle": (circle, 180.0),
    "square": (square, 25.0),
    "triangle": (triangle, 30.0),
    "star": (star, 36.0),
    "heart": (heart, 25.0),
    "cross": (cross, 30.0),
    "zigzag": (zigzag, 40.0),
    "spiral": (spiral, 180.0),
}
CLASS_NAMES = tuple(SHAPES)


def draw_shape(name: str, rng: np.random.Generator) -> Drawing:
    """One hand-drawn-looking drawing of ``name``: strokes of (x, y) points, y down, around the origin."""
    if name not in SHAPES:
        raise ValueError(f"Unknown shape {name!r}. Expected one of: {', '.join(SHAPES)}")
    generate, max_rotation = SHAPES[name]
    angle = np.radians(rng.uniform(-max_rotation, max_rotation))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    stretch = np.exp(rng.uniform(-ASPECT_RANGE, ASPECT_RANGE))
    transform = rotation @ np.diag([stretch, 1 / stretch])
    size, position = rng.uniform(50, 200), rng.uniform(0, 300, 2)  # canvas units; the renderer normalizes both
    return [_hand_drawn(stroke, rng) @ transform.T * size + position for stroke in generate(rng)]


def render_shape(name: str, rng: np.random.Generator) -> np.ndarray:
    """One (28, 28) uint8 bitmap of ``name``, drawn with a random line width."""
    drawing = draw_shape(name, rng)
    return render_strokes([stroke.tolist() for stroke in drawing], line_width=rng.uniform(*LINE_WIDTH_RANGE))


def _sample_rng(seed: int, split: str, label: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLIT_KEYS[split], label, index)))


def load_shapes(
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS,
    *,
    classes: Sequence[str] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    test_only: bool = False,
    budget: Budget | None = None,
) -> Dataset:
    """Generate the shapes ``Dataset``: ``samples_per_class`` drawings per class, ``test_fraction`` of them test.

    ``classes`` picks a subset of ``CLASS_NAMES`` (all by default); labels follow the given order. The images
    must fit the ``budget``'s ``max_dataset_bytes``, checked before any is drawn.
    """
    if isinstance(samples_per_class, bool) or not isinstance(samples_per_class, numbers.Integral) \
            or samples_per_class < 2:
        raise ValueError(f"load_shapes expects an integer `samples_per_class` >= 2. "
                         f"Received: samples_per_class={samples_per_class!r}")
    test_fraction = real_in_range("load_shapes", "test_fraction", test_fraction, 0.0, 1.0, low_open=True,
                                  high_open=True)
    seed = non_negative_int("load_shapes", "seed", seed)
    if isinstance(classes, str):
        classes = [classes]
    if classes is not None and (not isinstance(classes, Sequence) or not all(isinstance(c, str) for c in classes)):
        raise TypeError(f"load_shapes expects `classes` to be a list of class names. Received: {classes!r:.80}")
    names = list(CLASS_NAMES if classes is None else dict.fromkeys(classes))
    unknown = [name for name in names if name not in SHAPES]
    if unknown or not names:
        raise DataError(f"shapes: unknown class(es) {', '.join(map(repr, unknown))}; available: "
                        f"{', '.join(CLASS_NAMES)}")
    budget = budget or DEFAULT_BUDGET
    total = samples_per_class * len(names) * IMAGE_SIDE * IMAGE_SIDE
    if total > budget.max_dataset_bytes:
        raise DataError(f"shapes: {samples_per_class} drawings of each of {len(names)} classes take "
                        f"{bytes_text(total)}, more than the budget's max_dataset_bytes "
                        f"({bytes_text(budget.max_dataset_bytes)})")
    test_count = int(round(samples_per_class * test_fraction))
    counts = {"train": 0 if test_only else samples_per_class - test_count, "test": test_count}
    arrays = {}
    for split, count in counts.items():
        images = np.empty((count * len(names), IMAGE_SIDE, IMAGE_SIDE, 1), dtype=np.uint8)
        labels = np.repeat(np.arange(len(names), dtype=LABEL_DTYPE), count)
        for row, label in enumerate(labels):
            index = row - label * count
            rng = _sample_rng(seed, split, CLASS_NAMES.index(names[label]), index)
            images[row, :, :, 0] = render_shape(names[label], rng)
        arrays[split] = shuffled(np.random.default_rng([seed, SPLIT_KEYS[split]]), images, labels)
    return Dataset(*arrays["train"], *arrays["test"], label_dict=dict(enumerate(names)), name="shapes")
