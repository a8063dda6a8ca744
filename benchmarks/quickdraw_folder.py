"""Write a QuickDraw-like folder of many classes and millions of drawings, for the streaming and scale benchmarks.

    python benchmarks/quickdraw_folder.py /work/scratch/quickdraw345                 # 345 classes, 3,000,000
    python benchmarks/quickdraw_folder.py FOLDER --classes 20 --drawings 50000       # a small one

The real Quick, Draw! set (345 classes, ~50 million drawings, ~37 GB) is not downloaded by the package; this
generates a stand-in with the same file layout: one ``<class>.npy`` uint8 (N, 784) numpy_bitmap file per class,
classes of unequal sizes. The drawings come from the package's own renderer (``data.shapes``: the eight
hand-drawn shapes), composed into 388 possible classes (a shape alone or two shapes overlaid, side by side,
stacked, or one small in a corner of the other) and jittered cheaply and vectorised (a shift of up to 3 pixels,
the ink's strength, a few stray pixels), so that a class is learnable but no two drawings are the same.
Rendering the pools takes a few seconds; writing 3 million drawings (2.4 GB) about a minute.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from NeuralNetworks.data import shapes

SIDE = 28
HALF = SIDE // 2
MARGIN = 3  # the largest shift of a drawing, in pixels
POOL_PER_SHAPE = 400  # rendered drawings of each shape that the classes compose
CHUNK = 20_000  # drawings generated at once
SIZE_SPREAD = 0.4  # class sizes are spread uniformly over mean * [1 - spread, 1 + spread]
STRAY_PIXELS = 0.01  # share of pixels set to random ink
DEFAULT_CLASSES = 345
DEFAULT_DRAWINGS = 3_000_000
CORNERS = {"top-left": (0, 0), "top-right": (0, HALF), "bottom-left": (HALF, 0), "bottom-right": (HALF, HALF)}


def class_recipes() -> list[tuple[str, str, str, str | None]]:
    """Every composable class: (name, layout, first shape, second shape or None), in a fixed order."""
    names = shapes.CLASS_NAMES
    recipes = [(a, "alone", a, None) for a in names]
    recipes += [(f"{a} and {b}", "overlay", a, b) for a, b in itertools.combinations(names, 2)]
    recipes += [(f"{a} beside {b}", "beside", a, b) for a, b in itertools.product(names, repeat=2)]
    recipes += [(f"{a} above {b}", "above", a, b) for a, b in itertools.product(names, repeat=2)]
    recipes += [(f"{a} with {b} {corner}", corner, a, b) for corner in CORNERS
                for a, b in itertools.permutations(names, 2)]
    return recipes


def render_pools(seed: int, per_shape: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per shape: ``per_shape`` full-size (28x28) drawings and the same at half size (14x14, 2x2 max)."""
    full, half = {}, {}
    for label, name in enumerate(shapes.CLASS_NAMES):
        rng = np.random.default_rng([seed, label])
        pool = np.stack([shapes.render_shape(name, rng) for _ in range(per_shape)])
        full[name] = pool
        half[name] = pool.reshape(-1, HALF, 2, HALF, 2).max(axis=(2, 4))
    return full, half


def compose(recipe: tuple[str, str, str, str | None], count: int, pools: tuple[dict, dict],
            rng: np.random.Generator) -> np.ndarray:
    """``count`` drawings of one class: its shapes placed by its layout, shifted, inked and speckled."""
    _, layout, first, second = recipe
    full, half = pools
    canvas = np.zeros((count, SIDE + 2 * MARGIN, SIDE + 2 * MARGIN), np.uint8)
    inner = canvas[:, MARGIN:MARGIN + SIDE, MARGIN:MARGIN + SIDE]
    pick = lambda pool: pool[rng.integers(len(pool), size=count)]  # noqa: E731
    if layout in ("alone", "overlay"):
        inner[:] = pick(full[first])
        if second is not None:
            np.maximum(inner, pick(full[second]), out=inner)
    elif layout == "beside":
        inner[:, HALF // 2:HALF // 2 + HALF, :HALF] = pick(half[first])
        inner[:, HALF // 2:HALF // 2 + HALF, HALF:] = pick(half[second])
    elif layout == "above":
        inner[:, :HALF, HALF // 2:HALF // 2 + HALF] = pick(half[first])
        inner[:, HALF:, HALF // 2:HALF // 2 + HALF] = pick(half[second])
    else:
        top, left = CORNERS[layout]
        inner[:] = pick(full[first])
        corner = inner[:, top:top + HALF, left:left + HALF]
        np.maximum(corner, pick(half[second]), out=corner)
    shift = rng.integers(0, 2 * MARGIN + 1, size=(count, 2))
    rows = shift[:, :1, None] + np.arange(SIDE)[None, :, None]
    cols = shift[:, None, 1:] + np.arange(SIDE)[None, None, :]
    drawings = canvas[np.arange(count)[:, None, None], rows, cols].astype(np.float32)
    drawings *= rng.uniform(0.6, 1.0, size=(count, 1, 1)).astype(np.float32)
    stray = rng.random((count, SIDE, SIDE)) < STRAY_PIXELS
    drawings[stray] = rng.uniform(0, 255, size=int(stray.sum()))
    return drawings.astype(np.uint8).reshape(count, SIDE * SIDE)


def class_sizes(classes: int, drawings: int, rng: np.random.Generator) -> np.ndarray:
    """Unequal class sizes summing to ``drawings``."""
    weights = rng.uniform(1 - SIZE_SPREAD, 1 + SIZE_SPREAD, classes)
    sizes = np.floor(weights / weights.sum() * drawings).astype(np.int64)
    sizes[: drawings - sizes.sum()] += 1
    return sizes


def write_folder(folder: str | Path, classes: int = DEFAULT_CLASSES, drawings: int = DEFAULT_DRAWINGS,
                 seed: int = 0, progress: bool = False, pool_per_shape: int = POOL_PER_SHAPE) -> dict[str, int]:
    """Write ``classes`` class files holding ``drawings`` drawings in all into ``folder``; {class: drawings}.
    ``pool_per_shape`` renders per shape are composed (fewer: faster, less varied)."""
    recipes = class_recipes()
    if not 1 <= classes <= len(recipes):
        raise ValueError(f"classes must be in [1, {len(recipes)}]. Received: {classes}")
    if drawings < classes:
        raise ValueError(f"drawings must be at least one per class ({classes}). Received: {drawings}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    chosen = [recipes[i] for i in np.sort(rng.choice(len(recipes), classes, replace=False))]
    pools = render_pools(seed, pool_per_shape)
    written = {}
    for number, (recipe, size) in enumerate(zip(chosen, class_sizes(classes, drawings, rng), strict=True)):
        class_rng = np.random.default_rng([seed, number, 1])
        path = folder / f"{recipe[0]}.npy"
        temporary = path.with_name(f".{path.name}.part")
        out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(int(size), SIDE * SIDE))
        for start in range(0, int(size), CHUNK):
            stop = min(start + CHUNK, int(size))
            out[start:stop] = compose(recipe, stop - start, pools, class_rng)
        out.flush()
        del out
        temporary.replace(path)
        written[recipe[0]] = int(size)
        if progress:
            print(f"\r{number + 1}/{classes} classes, {sum(written.values()):,} drawings", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the <class>.npy files")
    parser.add_argument("--classes", type=int, default=DEFAULT_CLASSES)
    parser.add_argument("--drawings", type=int, default=DEFAULT_DRAWINGS, help="drawings over all classes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        written = write_folder(args.folder, args.classes, args.drawings, args.seed, progress=True)
    except ValueError as error:
        parser.error(str(error))
    total = sum(written.values())
    print(f"wrote {len(written)} classes, {total:,} drawings ({total * SIDE * SIDE / 1e9:.2f} GB) to {args.folder} "
          f"in {time.perf_counter() - start:.0f} s; smallest class {min(written.values()):,}, largest "
          f"{max(written.values()):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
