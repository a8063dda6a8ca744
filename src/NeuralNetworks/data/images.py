"""Drawings and images -> the 28x28 uint8 input a model sees: ONE pipeline for training data and the app.

Two styles, matching how each dataset's bitmaps were made:

- ``"quickdraw"`` (Google's ``numpy_bitmap``): strokes aligned to 0, scaled uniformly so the longer side is
  255, simplified (Ramer-Douglas-Peucker, epsilon 2), then drawn with round 16-unit lines into a 256-unit
  square centred inside a 304-unit frame (2 x 16 units of padding + one line width), mapped to 28 px
  (scale 28/304), white ink on black, antialiased. See ``vector_to_raster`` in
  https://github.com/googlecreativelab/quickdraw-dataset/issues/19.
- ``"mnist"``: the digit's bounding box scaled into a 20x20 box keeping aspect, antialiased, then shifted so
  its centre of mass sits at the centre of the 28x28 field (http://yann.lecun.com/exdb/mnist/).

Everything is drawn at ``SUPERSAMPLING`` x the final resolution with exact float geometry and reduced with an
area (box) filter, so a stroke's width depends on the style, never on how big the user drew.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from .._validation import shown
from ..budget import DEFAULT_BUDGET, Budget

SIZE = 28  # output side, pixels
SUPERSAMPLING = 8  # drawing resolution factor before the area-filter reduction
INK = 255  # uint8 value of full ink (white on black, as in both datasets)
STYLES = ("quickdraw", "mnist")
Style = Literal["quickdraw", "mnist"]

# QuickDraw numpy_bitmap geometry, in units of the 256-unit drawing space.
QUICKDRAW_EXTENT = 255.0  # the longer side of the aligned drawing
QUICKDRAW_SPACE = 256.0
QUICKDRAW_PADDING = 16.0
QUICKDRAW_LINE_WIDTH = 16.0
QUICKDRAW_FRAME = QUICKDRAW_SPACE + 2 * QUICKDRAW_PADDING + QUICKDRAW_LINE_WIDTH  # 304 units -> 28 px
QUICKDRAW_SIMPLIFY_EPSILON = 2.0  # Ramer-Douglas-Peucker tolerance Google applied, in 255-space units

# MNIST geometry, in output pixels.
MNIST_BOX = 20.0  # the ink's bounding box is scaled to fit this square
MNIST_PEN_WIDTH = 3.0  # measured: a vertical "1" in the MNIST test set is ~3.0 px wide (median row ink / 255)
MNIST_CENTER = 14.0  # row/column index the centre of mass lands on (test-set mean: 13.99, 14.01)
MNIST_SIMPLIFY_EPSILON = 0.1  # output pixels: drops redundant points of dense pointer input, invisibly

BOX_THRESHOLD = 0.5  # ink level (of the brightest ink) at an antialiased edge: where the drawing's box ends
NOISE_FLOOR = 0.05  # ink below this fraction of the brightest ink is background noise (JPEG, paper texture)
MIN_IMAGE_SIDE = 8  # pixels; smaller images cannot hold a drawing
MAX_POINTS = DEFAULT_BUDGET.max_points  # bounds one drawing's work (worst case ~1 s); a busy doodle has ~2,000
WIDE_GREY_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535}  # 16-bit grey: full ink value


class EmptyDrawingError(ValueError):
    """The drawing has no ink (or fewer than two points): ask the user to draw something, do not guess."""


# -- strokes -----------------------------------------------------------------------------------------------
def _as_strokes(strokes: object, budget: Budget) -> list[np.ndarray]:
    """Validate ``strokes`` (a sequence of strokes, each a sequence of (x, y)) as float64 (n, 2) arrays, within the
    budget's ``max_points`` (points, and strokes) and ``max_coordinate``."""
    if isinstance(strokes, str | bytes) or not isinstance(strokes, Sequence | np.ndarray):
        raise TypeError(f"`strokes` must be a list of strokes, each a list of (x, y) points. "
                        f"Received: {type(strokes).__name__}")
    if len(strokes) > budget.max_points:
        raise ValueError(f"The drawing has more than {budget.max_points} points or strokes; simplify it")
    arrays, total = [], 0
    for index, stroke in enumerate(strokes):
        try:
            points = np.asarray(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"stroke {index} must be a list of (x, y) number pairs. "
                             f"Received: {shown(stroke)}") from None
        if points.size == 0:
            continue
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"stroke {index} must have shape (points, 2) with (x, y) pairs. "
                             f"Received shape {points.shape}")
        if not np.isfinite(points).all():
            raise ValueError(f"stroke {index} contains NaN or infinite coordinates")
        if np.abs(points).max() > budget.max_coordinate:
            raise ValueError(f"stroke {index} has a coordinate beyond +-{budget.max_coordinate:g}; send the drawing "
                             "in screen units")
        total += len(points)
        if total > budget.max_points:
            raise ValueError(f"The drawing has more than {budget.max_points} points; simplify it")
        arrays.append(points)
    if total < 2:
        raise EmptyDrawingError(f"The drawing is empty: draw something (received {total} point"
                                f"{'' if total == 1 else 's'}, at least 2 are needed)")
    return arrays


def simplify(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: keep the fewest points whose polyline stays within ``epsilon`` of ``points``."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    spans = [(0, len(points) - 1)]
    while spans:
        first, last = spans.pop()
        if last - first < 2:
            continue
        inner = points[first + 1:last] - points[first]
        chord = points[last] - points[first]
        length = np.hypot(*chord)
        if length == 0:
            distances = np.hypot(inner[:, 0], inner[:, 1])
        else:
            distances = np.abs(inner[:, 0] * chord[1] - inner[:, 1] * chord[0]) / length
        farthest = int(np.argmax(distances))
        if distances[farthest] > epsilon:
            split = first + 1 + farthest
            keep[split] = True
            spans += [(first, split), (split, last)]
    return points[keep]


def _coverage(strokes: Sequence[np.ndarray], radius: float, side: int) -> np.ndarray:
    """Ink coverage in [0, 1] of round-capped, round-joined polylines on a ``side`` x ``side`` grid.

    Coordinates are continuous (pixel ``i`` spans [i, i+1]). Each sample gets ``radius + 0.5 - distance``
    clipped to [0, 1]: the exact area for straight edges, and the union of strokes is their maximum.
    """
    canvas = np.zeros((side, side), dtype=np.float32)
    for points in strokes:
        starts = points if len(points) == 1 else points[:-1]
        ends = points if len(points) == 1 else points[1:]
        for (ax, ay), (bx, by) in zip(starts, ends, strict=True):
            reach = radius + 1
            x0, x1 = max(int(min(ax, bx) - reach), 0), min(int(max(ax, bx) + reach) + 1, side)
            y0, y1 = max(int(min(ay, by) - reach), 0), min(int(max(ay, by) + reach) + 1, side)
            if x0 >= x1 or y0 >= y1:
                continue
            px = np.arange(x0, x1, dtype=np.float32)[np.newaxis, :] + 0.5 - ax
            py = np.arange(y0, y1, dtype=np.float32)[:, np.newaxis] + 0.5 - ay
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = np.clip((px * dx + py * dy) / length2, 0, 1) if length2 > 0 else 0.0
            distance = np.hypot(px - t * dx, py - t * dy)
            window = canvas[y0:y1, x0:x1]
            np.maximum(window, np.clip(radius + 0.5 - distance, 0, 1), out=window)
    return canvas


def _reduce(coverage: np.ndarray) -> np.ndarray:
    """Area-average ``SUPERSAMPLING`` x ``SUPERSAMPLING`` blocks and quantize to uint8 ink."""
    side = coverage.shape[0] // SUPERSAMPLING
    blocks = coverage.reshape(side, SUPERSAMPLING, side, SUPERSAMPLING).mean(axis=(1, 3))
    return np.rint(np.clip(blocks, 0, 1) * INK).astype(np.uint8)


def _scale(size: float, extent: float) -> float:
    """The factor that makes a drawing ``extent`` wide ``size`` wide; 1 for a dot (or a drawing so small that the
    factor would overflow, which is a dot as well)."""
    scale = size / extent if extent > 0 else 1.0
    return scale if np.isfinite(scale) else 1.0


def render_strokes(strokes: Sequence[Sequence[tuple[float, float]]], *,
                   line_width: float = QUICKDRAW_LINE_WIDTH, budget: Budget = DEFAULT_BUDGET) -> np.ndarray:
    """Render vector strokes exactly like QuickDraw's ``numpy_bitmap``: a (28, 28) uint8, white ink on black.

    ``strokes`` are lists of (x, y) points in any unit (y down, like a screen); only their shape matters.
    ``line_width`` is in the 256-unit space (16 in the dataset). A one-point stroke renders as a dot.
    Raises EmptyDrawingError with fewer than two points in total, ValueError for non-finite coordinates.
    """
    if not isinstance(line_width, int | float) or not np.isfinite(line_width) or line_width <= 0:
        raise ValueError(f"`line_width` must be a positive number of 256-space units. Received: {line_width!r}")
    arrays = _as_strokes(strokes, budget)
    low = np.min([points.min(axis=0) for points in arrays], axis=0)
    extent = float(np.max(np.max([points.max(axis=0) for points in arrays], axis=0) - low))
    scale = _scale(QUICKDRAW_EXTENT, extent)
    aligned = [simplify((points - low) * scale, QUICKDRAW_SIMPLIFY_EPSILON) for points in arrays]
    box = np.max([points.max(axis=0) for points in aligned], axis=0)
    offset = (QUICKDRAW_SPACE - box) / 2 + (QUICKDRAW_FRAME - QUICKDRAW_SPACE) / 2
    pixels_per_unit = SIZE * SUPERSAMPLING / QUICKDRAW_FRAME
    placed = [(points + offset) * pixels_per_unit for points in aligned]
    return _reduce(_coverage(placed, line_width / 2 * pixels_per_unit, SIZE * SUPERSAMPLING))


def render_strokes_mnist(strokes: Sequence[Sequence[tuple[float, float]]], *,
                         budget: Budget = DEFAULT_BUDGET) -> np.ndarray:
    """Render strokes as an MNIST digit: (28, 28) uint8, ink box fitted to 20x20, centred by mass.

    The pen is ``MNIST_PEN_WIDTH`` px wide in the 20 px box whatever the drawing's size, like MNIST's.
    """
    arrays = _as_strokes(strokes, budget)
    low = np.min([points.min(axis=0) for points in arrays], axis=0)
    extent = float(np.max(np.max([points.max(axis=0) for points in arrays], axis=0) - low))
    centerline_box = (MNIST_BOX - MNIST_PEN_WIDTH) * SUPERSAMPLING
    scale = _scale(centerline_box, extent)
    radius = MNIST_PEN_WIDTH * SUPERSAMPLING / 2
    side = SIZE * SUPERSAMPLING
    epsilon = MNIST_SIMPLIFY_EPSILON * SUPERSAMPLING
    placed = [simplify((points - low) * scale + radius + 1, epsilon) for points in arrays]  # 20 px box < 28 px
    return _reduce(_center_by_mass(_coverage(placed, radius, side)))


# -- images ------------------------------------------------------------------------------------------------
def _ink(image: object) -> np.ndarray:
    """Grey ink in [0, 1] (1 = brightest ink) from a PIL image or array of any common layout and polarity."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            array = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
        elif image.mode in WIDE_GREY_MODES or image.mode in ("I", "F"):  # convert("L") would clip at 255
            values = np.asarray(image, dtype=np.float32)
            if not np.isfinite(values).all():
                raise ValueError("`image` contains NaN or infinite values")
            peak = float(values.max(initial=0))
            full = WIDE_GREY_MODES.get(image.mode) or (65535 if peak > INK else INK if peak > 1 else 1)
            array = np.clip(values / full, 0, 1)
        else:
            array = np.asarray(image.convert("L"), dtype=np.float32) / 255
    else:
        raw = np.asarray(image)
        if raw.dtype == object or not (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool):
            raise TypeError(f"`image` must be a PIL image or a numeric array. Received dtype {raw.dtype}")
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[:, :, 0]
        if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] not in (3, 4)):
            raise ValueError(f"`image` must have shape (height, width) or (height, width, 1|3|4). "
                             f"Received shape {raw.shape}")
        array = raw.astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError("`image` contains NaN or infinite values")
        if np.issubdtype(raw.dtype, np.integer) or array.max(initial=0) > 1:
            array /= 255
        array = np.clip(array, 0, 1)
    if min(array.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(f"The image is too small to hold a drawing: at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
                         f"pixels expected. Received {array.shape[1]}x{array.shape[0]}")
    if array.ndim == 3:
        alpha = array[:, :, 3] if array.shape[2] == 4 else None
        if alpha is not None and alpha.min() < 1:  # a transparent canvas: the alpha channel is the ink
            return alpha
        array = array[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    background = float(np.median(border))
    return np.clip(background - array if background > 0.5 else array - background, 0, 1)


def _edges(profile: np.ndarray) -> tuple[float, float]:
    """Sub-pixel positions where an ink profile first and last crosses ``BOX_THRESHOLD`` (pixel centres at i+0.5)."""
    above = np.nonzero(profile >= BOX_THRESHOLD)[0]
    first, last = int(above[0]), int(above[-1])
    start, stop = float(first), float(last + 1)
    if first > 0:
        start = first - 0.5 + (BOX_THRESHOLD - profile[first - 1]) / (profile[first] - profile[first - 1])
    if last < len(profile) - 1:
        stop = last + 0.5 + (profile[last] - BOX_THRESHOLD) / (profile[last] - profile[last + 1])
    return start, stop


def _ink_box(ink: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Normalize the ink so its brightest pixel is 1, and return it with the drawing's box (x0, y0, x1, y1).

    The box edges lie where the ink crosses half its full level, interpolated between pixel centres: the edge
    of an antialiased or blurred stroke, exact to a fraction of a pixel even in a 28x28 bitmap.
    """
    peak = float(ink.max())
    if peak < NOISE_FLOOR:
        raise EmptyDrawingError("The image has no ink: draw something")
    ink = np.where(ink >= NOISE_FLOOR * peak, ink / peak, 0).astype(np.float32)
    x0, x1 = _edges(ink.max(axis=0))
    y0, y1 = _edges(ink.max(axis=1))
    return ink, (x0, y0, x1, y1)


def _place(ink: np.ndarray, box: tuple[float, float, float, float], long_side: float,
           center: tuple[float, float]) -> np.ndarray:
    """Scale ``ink`` so the box's longer side is ``long_side`` px and its centre lands on ``center`` (x, y)."""
    x0, y0, x1, y1 = box
    scale = long_side / max(x1 - x0, y1 - y0)
    side = SIZE * SUPERSAMPLING
    # the source region that lands on the canvas, in float source pixels; zero-padded where it leaves the image
    left, top = (x0 + x1) / 2 - center[0] / scale, (y0 + y1) / 2 - center[1] / scale
    extent = side / scale
    crop_x0, crop_y0 = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
    crop_x1 = min(int(np.ceil(left + extent)), ink.shape[1])
    crop_y1 = min(int(np.ceil(top + extent)), ink.shape[0])
    pad_x, pad_y = max(-int(np.floor(left)), 0), max(-int(np.floor(top)), 0)
    region = np.zeros((pad_y + int(np.ceil(top + extent)) - int(np.floor(top)) + 1,
                       pad_x + int(np.ceil(left + extent)) - int(np.floor(left)) + 1), dtype=np.float32)
    region[pad_y:pad_y + crop_y1 - crop_y0, pad_x:pad_x + crop_x1 - crop_x0] = ink[crop_y0:crop_y1, crop_x0:crop_x1]
    origin_x, origin_y = crop_x0 - pad_x, crop_y0 - pad_y
    placed = Image.fromarray(region, mode="F").resize(
        (side, side), Image.Resampling.BOX,  # area filter: exact pixel areas up and down
        box=(left - origin_x, top - origin_y, left - origin_x + extent, top - origin_y + extent))
    return np.asarray(placed, dtype=np.float32)


def _center_by_mass(coverage: np.ndarray) -> np.ndarray:
    """Shift supersampled ``coverage`` so its centre of mass falls on output pixel ``MNIST_CENTER``."""
    mass = float(coverage.sum())
    rows, cols = np.indices(coverage.shape, dtype=np.float64)
    target = (MNIST_CENTER + 0.5) * SUPERSAMPLING - 0.5  # centre of output pixel 14, in supersampled indices
    shift_y = round(target - float((coverage * rows).sum()) / mass)
    shift_x = round(target - float((coverage * cols).sum()) / mass)
    side = SIZE * SUPERSAMPLING
    canvas = np.zeros((side, side), dtype=np.float32)
    source = coverage[max(-shift_y, 0):side - max(shift_y, 0), max(-shift_x, 0):side - max(shift_x, 0)]
    canvas[max(shift_y, 0):max(shift_y, 0) + source.shape[0],
           max(shift_x, 0):max(shift_x, 0) + source.shape[1]] = source
    return canvas


def preprocess_image(image: object, style: Style = "quickdraw") -> np.ndarray:
    """A plain image (upload, canvas snapshot, form post) -> the (28, 28) uint8 the model sees.

    Accepts a PIL image or a uint8/float array, grey, RGB or RGBA; black-on-white or white-on-black is read
    from the border, and a transparent canvas's alpha is its ink. The drawing's box is cropped and scaled
    keeping its aspect: ``"quickdraw"`` gives it QuickDraw's margins, ``"mnist"`` fits it in 20x20 and
    centres it by mass. Raises EmptyDrawingError when there is no ink.
    """
    if style not in STYLES:
        raise ValueError(f"Unknown preprocessing style {style!r}. Expected one of: {', '.join(STYLES)}")
    ink, box = _ink_box(_ink(image))
    side = SIZE * SUPERSAMPLING
    if style == "mnist":
        placed = _place(ink, box, MNIST_BOX * SUPERSAMPLING, (side / 2, side / 2))
        return _reduce(_center_by_mass(placed))
    ink_extent = (QUICKDRAW_EXTENT + QUICKDRAW_LINE_WIDTH) * side / QUICKDRAW_FRAME
    return _reduce(_place(ink, box, ink_extent, (side / 2, side / 2)))


def preprocess_strokes(strokes: Sequence[Sequence[tuple[float, float]]], style: Style = "quickdraw", *,
                       budget: Budget = DEFAULT_BUDGET) -> np.ndarray:
    """Vector strokes -> the (28, 28) uint8 the model sees, in the given dataset ``style``."""
    if style not in STYLES:
        raise ValueError(f"Unknown preprocessing style {style!r}. Expected one of: {', '.join(STYLES)}")
    if style == "mnist":
        return render_strokes_mnist(strokes, budget=budget)
    return render_strokes(strokes, budget=budget)
