"""Your own images: a folder of class subfolders (``FOLDER/cat/*.png``, ``FOLDER/dog/*.jpg``) as a ``Dataset``.

``load_folder(folder)`` (``data.load("folder", data_dir=folder)``) reads it in two passes:

1. the headers: class names are the sorted subfolder names; hidden files and files that are not PNG, JPEG, BMP,
   GIF or WebP are skipped and counted; every image's size and mode are read from its header (no pixel is
   decoded), which gives the default size (the most common one, its longer side capped at
   ``MAX_DEFAULT_SIDE``) and whether any file is stored in colour;
2. the pixels, once per file, straight into the split it belongs to. Each class is split by a seeded
   permutation of its sorted files (test first, then validation, then training: the rule of
   ``data.stream("quickdraw")``), so a class's split depends only on the seed, its name and its files.

A large folder is decoded **once into a memory-mapped cache** (an unnamed temporary file, gone when the process
ends) rather than streamed: decoding a PNG costs far more than reading its pixels back, and training reads every
image once an epoch, so decoding on the fly would redo the costliest step every epoch. Each split is a
contiguous slice of the cache, so ``fit`` gathers its batches from the map and memory stays bounded by the
batch, not the folder (see benchmarks/image_folder.py). Folders under ``IN_MEMORY_BYTES`` stay in memory.

Every file goes through ``prepare_image``, the one pipeline ``test``, ``predict``, the app and the exports apply
too: EXIF orientation, 16-bit and palette images to 8-bit, transparency over white, bilinear resize to
(height, width), grey or RGB, then inversion for ink on paper. The steps are saved with the model as an image
spec (``data.preprocessing``).

Ink on paper: a file is a drawing on paper when its border is light (median >= ``PAPER_LEVEL``) and at least
``PAPER_SHARE`` of its pixels are within ``PAPER_TOLERANCE`` of that border level (a plain background; photos
rarely have one). When at least ``INK_ON_PAPER_SHARE`` of the training files are, every image is inverted to
the built-in sets' white ink on black. ``invert=True``/``False`` (``--ink-on-paper``/``--no-ink-on-paper``)
forces the choice.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .._files import open_regular
from .._validation import non_negative_int, printable, real_in_range, shape_tuple, text
from ..budget import DEFAULT_BUDGET, Budget, bytes_text
from .errors import DataError
from .images import SIZE, STYLES, preprocess_image
from .preprocessing import check_image, image_spec
from .quickdraw import DEFAULT_TEST_FRACTION, class_rng
from .splits import LABEL_DTYPE, Dataset, require_classes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
COLORS = ("grayscale", "rgb")
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")
WIDE_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N")  # more than 8 bits a pixel
WIDE_FULL_SCALE = 65535  # 16-bit ink
BYTE_FULL_SCALE = 255
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
EXIF_ORIENTATION = 0x0112
MAX_DEFAULT_SIDE = 64  # the default size's longer side, pixels: a small CNN trains on it in minutes on a CPU
MAX_FILES = 1_000_000
IN_MEMORY_BYTES = 256 * 2**20  # decoded folders above this go to the memory-mapped cache
COLOUR_TOLERANCE = 12  # a pixel whose channels differ by more than this is in colour (JPEG noise stays below)
PAPER_LEVEL, PAPER_TOLERANCE, PAPER_SHARE = 128, 32, 0.5
INK_ON_PAPER_SHARE = 0.75
LUMA_WEIGHTS = (19595, 38470, 7471)  # Pillow's RGB -> L, in 1/65536: grey from colour exactly as convert("L")
SPLITS = ("test", "val", "train")  # the order each class's shuffled files are dealt out in


@dataclass(frozen=True)
class Scan:
    """What the headers of a folder said: the readable image files of each class, their sizes, and what was
    skipped."""

    classes: list[str]
    files: list[list[Path]]
    sizes: list[tuple[int, int]]  # (height, width) after EXIF orientation, every readable file
    colour: bool  # some file is stored in a colour mode
    skipped: int  # hidden files and files without an image suffix
    unreadable: list[Path]


def read_sample(path: str | os.PathLike, spec: dict | str, budget: Budget = DEFAULT_BUDGET) -> np.ndarray:
    """Decode one image file and ``prepare_image`` it (or, for a drawing style such as the shipped models',
    ``images.preprocess_image`` it to 28x28x1); ValueError (or Pillow's error) if it cannot be."""
    with warnings.catch_warnings(), open_regular(path, DataError, "image file") as handle:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(handle, formats=IMAGE_FORMATS)
        if image.size[0] * image.size[1] > budget.max_image_pixels:
            raise ValueError(f"{path}: {image.size[0]}x{image.size[1]} pixels, more than the budget's "
                             f"max_image_pixels ({budget.max_image_pixels})")
        image.load()
        if isinstance(spec, str):
            return preprocess_image(image, style=spec)[:, :, None]
        return prepare_image(image, spec)


def _header(path: Path, budget: Budget) -> tuple[tuple[int, int], str] | None:
    """(height, width) after orientation and mode of an image file, from its header; None if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
                mode = image.mode
    except Exception:  # Pillow's parsers are not written for hostile input: whatever they raise, unreadable
        return None
    if width * height > budget.max_image_pixels:
        return None
    return ((width, height) if orientation in TRANSPOSED_ORIENTATIONS else (height, width)), mode


def scan(data_dir: str | os.PathLike, budget: Budget = DEFAULT_BUDGET) -> Scan:
    """Read the class subfolders of ``data_dir`` and their images' headers (see the module docstring)."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (expected a folder with one subfolder of images per "
                        "class, e.g. cat/*.png and dog/*.jpg)")
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not classes and any(path.suffix in (".npy", ".gz", ".npz") for path in folder.iterdir()):
        raise DataError(f"{folder}: no class subfolders, but dataset files (.npy, .gz, .npz): name the dataset, "
                        "e.g. --dataset quickdraw or --dataset mnist")
    files: list[list[Path]] = []
    sizes: list[tuple[int, int]] = []
    unreadable: list[Path] = []
    skipped, colour, total = 0, False, 0
    for class_ in classes:
        kept = []
        for path in sorted((folder / class_).iterdir()):
            total += 1
            if total > MAX_FILES:
                raise DataError(f"{folder}: more than {MAX_FILES} files; split the folder")
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                skipped += 1
                continue
            header = _header(path, budget)
            if header is None:
                unreadable.append(path)
                continue
            kept.append(path)
            sizes.append(header[0])
            colour |= header[1] not in GREY_MODES
        files.append(kept)
    empty = [class_ for class_, kept in zip(classes, files, strict=True) if not kept]
    if empty:
        raise DataError(f"{folder / empty[0]}: the class folder holds no readable image; add PNG, JPEG, BMP, GIF "
                        "or WebP files to it or remove it")
    require_classes(str(folder), classes, [len(kept) for kept in files])
    for class_ in classes:  # they become the model's labels: checked now, not when the trained model is saved
        try:
            text("the folder", "class name", class_, budget.max_name_chars)
        except ValueError as error:
            raise DataError(f"{printable(str(folder))}: a class folder's name cannot be a label ({error})") from None
    return Scan(classes, files, sizes, colour, skipped, unreadable)


def default_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (height, width), scaled down so its longer side is at most ``MAX_DEFAULT_SIDE``."""
    height, width = collections.Counter(sizes).most_common(1)[0][0]
    scale = min(1.0, MAX_DEFAULT_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit "L" (grey modes) or "RGB": EXIF orientation applied, 16-bit scaled, palette expanded,
    transparency composited over white."""
    image = ImageOps.exif_transpose(image)
    grey = image.mode in GREY_MODES
    if image.mode in WIDE_MODES:
        values = np.asarray(image, dtype=np.float64)
        full = WIDE_FULL_SCALE if values.max(initial=0) > BYTE_FULL_SCALE else BYTE_FULL_SCALE
        return Image.fromarray(np.rint(np.clip(values, 0, full) * (BYTE_FULL_SCALE / full)).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (BYTE_FULL_SCALE,) * 4)
        image = Image.alpha_composite(paper, rgba)
    return image.convert("L" if grey else "RGB")


def prepare_image(image: Image.Image, spec: dict) -> np.ndarray:
    """One image -> the ``(height, width, channels)`` uint8 sample an image spec's model sees (module docstring)."""
    image = _eight_bit(image).resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)
    array = _channels(np.asarray(image, dtype=np.uint8), spec["channels"])
    return BYTE_FULL_SCALE - array if spec["invert"] else array


def resample(bitmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (h, w) uint8 bitmap resized to (height, width) by bilinear interpolation between pixel centres (edges
    clamped), rounded half to even: simple enough for strokes.js to compute the very same bytes."""
    rows = _taps(bitmap.shape[0], height)
    cols = _taps(bitmap.shape[1], width)
    source = bitmap.astype(np.float64)
    across = source[:, cols[0]] * (1 - cols[2]) + source[:, cols[1]] * cols[2]
    values = across[rows[0]] * (1 - rows[2])[:, None] + across[rows[1]] * rows[2][:, None]
    return np.rint(values).astype(np.uint8)


def _taps(size: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    position = np.clip((np.arange(target) + 0.5) * (size / target) - 0.5, 0, size - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, size - 1), position - low


def strokes_sample(bitmap: np.ndarray, spec: dict) -> np.ndarray:
    """A drawing rendered as the 28x28 white-on-black bitmap of ``images.render_strokes`` -> the input of an
    image spec's model: resized by ``resample``, grey replicated to its channels. (White ink on black is what
    an inverted ink-on-paper model sees, and what a model of white-on-black drawings saw.)"""
    return _channels(resample(np.asarray(bitmap, dtype=np.uint8), spec["height"], spec["width"]), spec["channels"])


def _channels(array: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (H, W, channels): grey replicated, or colour to grey as Pillow does."""
    if array.ndim == 2:
        return np.repeat(array[:, :, None], channels, axis=2) if channels == 3 else array[:, :, None]
    if channels == 3:
        return array
    luma = array.astype(np.uint32) @ np.array(LUMA_WEIGHTS, dtype=np.uint32)
    return ((luma + (1 << 15)) >> 16).astype(np.uint8)[:, :, None]


def _on_paper(sample: np.ndarray) -> bool:
    grey = _channels(sample, 1)[:, :, 0] if sample.shape[2] == 3 else sample[:, :, 0]
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    level = float(np.median(border))
    plain = float(np.mean(np.abs(grey.astype(np.int16) - level) <= PAPER_TOLERANCE))
    return level >= PAPER_LEVEL and plain >= PAPER_SHARE


def _split_counts(count: int, test_fraction: float, validation_fraction: float) -> dict[str, int]:
    test = int(np.rint(count * test_fraction))
    val = int(np.rint((count - test) * validation_fraction))
    return {"test": test, "val": val, "train": count - test - val}


def _storage(shape: tuple[int, ...], cache_dir: str | os.PathLike | None, budget: Budget) -> np.ndarray:
    """An uninitialised uint8 array: in memory when small, else a map of an unnamed temporary file."""
    size = int(np.prod(shape))
    if cache_dir is None and size <= min(IN_MEMORY_BYTES, budget.max_dataset_bytes):
        return np.empty(shape, dtype=np.uint8)
    folder = Path(cache_dir or tempfile.gettempdir())
    if shutil.disk_usage(folder).free < size:
        raise DataError(f"the decoded images take {bytes_text(size)}, more than the free space in {folder}; "
                        "pass cache_dir (CLI: --cache-dir) on a larger disk, or a smaller image_size")
    handle = tempfile.TemporaryFile(dir=cache_dir)  # unlinked at once: no leftover, whatever happens
    try:
        return np.memmap(handle, dtype=np.uint8, mode="w+", shape=shape)
    except OSError as error:
        raise DataError(f"cannot make a {bytes_text(size)} image cache in {cache_dir or tempfile.gettempdir()} "
                        f"({error.strerror}); pass cache_dir (CLI: --cache-dir) on a larger disk") from None


def load_folder(
    data_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    color: str | None = None,
    invert: bool | None = None,
    preprocessing: dict | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    validation_fraction: float = 0.0,
    whole: bool = False,
    seed: int = 0,
    test_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
    name: str = "folder",
    budget: Budget | None = None,
) -> Dataset:
    """A ``Dataset`` from a folder of class subfolders (see the module docstring).

    ``image_size`` (height, width), ``color`` ("grayscale" or "rgb") and ``invert`` default to what the folder
    suggests; ``preprocessing`` (a model's image spec) overrides all three, as ``test`` and ``predict`` need.
    ``test_fraction`` of each class is the test split, ``validation_fraction`` of the rest ``x_val``; with
    ``whole`` every image is test data (a folder the model never trained on). ``cache_dir``: where the
    memory-mapped cache goes (default: in memory when small, else the system's temporary folder).
    """
    budget = budget or DEFAULT_BUDGET
    seed = non_negative_int("load_folder", "seed", seed)
    test_fraction = real_in_range("load_folder", "test_fraction", test_fraction, 0.0, 1.0, high_open=True)
    validation_fraction = real_in_range("load_folder", "validation_fraction", validation_fraction, 0.0, 1.0,
                                        high_open=True)
    if color is not None and color not in COLORS:
        raise ValueError(f"load_folder expects `color` to be one of {', '.join(COLORS)} or None. Received: {color!r}")
    if invert is not None and not isinstance(invert, bool):
        raise TypeError(f"load_folder expects `invert` to be True, False or None. Received: {invert!r}")
    if image_size is not None:
        image_size = shape_tuple("load_folder", "image_size", image_size)
        if len(image_size) != 2 or max(image_size) > 4096:
            raise ValueError(f"load_folder expects `image_size` (height, width) of at most 4096 pixels a side. "
                             f"Received: {image_size}")
    found = scan(data_dir, budget)
    notes = []
    if found.skipped:
        notes.append(f"skipped {found.skipped} hidden or non-image file(s)")
    style = preprocessing if isinstance(preprocessing, str) else None  # a drawing model's, e.g. a shipped one
    if style is not None:
        if style not in STYLES:
            raise ValueError(f"load_folder expects `preprocessing` to be an image spec or one of {', '.join(STYLES)}. "
                             f"Received: {style!r}")
        spec = image_spec(SIZE, SIZE, 1, False)
    elif preprocessing is not None:
        spec = dict(check_image(preprocessing))
    else:
        height, width = image_size or default_size(found.sizes)
        colour = found.colour if color is None else color == "rgb"
        spec = image_spec(height, width, 3 if colour else 1, False)
    shape = (spec["height"], spec["width"], spec["channels"])
    # deal each class's files into the splits, then lay the splits out one after the other in the cache
    dealt: dict[str, list[tuple[Path, int]]] = {split: [] for split in SPLITS}
    for label, (class_, paths) in enumerate(zip(found.classes, found.files, strict=True)):
        order = class_rng(seed, class_).permutation(len(paths))
        counts = {"test": len(paths), "val": 0, "train": 0} if whole else _split_counts(
            len(paths), test_fraction, validation_fraction)
        start = 0
        for split in SPLITS:
            dealt[split] += [(paths[i], label) for i in np.sort(order[start:start + counts[split]])]
            start += counts[split]
    wanted = ("test",) if test_only else SPLITS
    total = sum(len(dealt[split]) for split in wanted)
    cache = _storage((total, *shape), cache_dir, budget)
    unreadable = list(found.unreadable)
    colourful, paper, start = False, 0, 0
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in wanted:
        labels, cursor = [], start
        for path, label in dealt[split]:
            try:
                sample = read_sample(path, style or spec, budget)
            except Exception:  # a truncated or corrupt file: skipped and reported, like an unreadable header
                unreadable.append(path)
                continue
            cache[cursor] = sample
            if spec["channels"] == 3 and not colourful:
                spread = sample.max(axis=2).astype(np.int16) - sample.min(axis=2)
                colourful = bool((spread > COLOUR_TOLERANCE).any())
            paper += split == wanted[-1] and _on_paper(sample)  # judged on the training split (test: its own)
            labels.append(label)
            cursor += 1
        arrays[split] = (cache[start:cursor], np.array(labels, dtype=LABEL_DTYPE))
        start += len(dealt[split])
    if unreadable:
        notes.append(f"skipped {len(unreadable)} unreadable image(s), e.g. {printable(str(unreadable[0]))}")
    if preprocessing is None:
        spec, arrays = _decide(spec, arrays, colour_wanted=color, colourful=colourful, invert=invert,
                               paper_share=paper / max(1, len(arrays[wanted[-1]][1])),
                               cache_dir=cache_dir, budget=budget, notes=notes)
    if not test_only:
        require_classes(str(data_dir), found.classes, np.bincount(arrays["train"][1], minlength=len(found.classes)))
    empty = np.empty((0, *(spec["height"], spec["width"], spec["channels"])), dtype=np.uint8)
    train = arrays.get("train", (empty, np.empty(0, LABEL_DTYPE)))
    val = arrays.get("val")
    has_val = val is not None and len(val[1]) > 0
    return Dataset(*train, *arrays["test"], label_dict=dict(enumerate(found.classes)), name=name,
                   x_val=val[0] if has_val else None, y_val=val[1] if has_val else None,
                   preprocessing=style or spec, notes=tuple(notes))


def _decide(spec: dict, arrays: dict, *, colour_wanted: str | None, colourful: bool, invert: bool | None,
            paper_share: float, cache_dir: str | os.PathLike | None, budget: Budget,
            notes: list[str]) -> tuple[dict, dict]:
    """Settle the choices made from the pixels: grey when no file had colour (unless rgb was asked for), and
    inversion for ink on paper (unless forced); rewrite the decoded samples to match, chunk by chunk."""
    grey = spec["channels"] == 3 and colour_wanted is None and not colourful
    inverted = paper_share >= INK_ON_PAPER_SHARE if invert is None else invert
    if invert is None:
        notes.append(f"{paper_share:.0%} of the training images look like ink on paper: "
                     f"{'inverted to white ink on black' if inverted else 'kept as they are'} "
                     f"(force with --ink-on-paper / --no-ink-on-paper)")
    if not grey and not inverted:
        return spec, arrays
    spec = image_spec(spec["height"], spec["width"], 1 if grey else spec["channels"], inverted)
    total = sum(len(x) for x, _ in arrays.values())
    target = _storage((total, spec["height"], spec["width"], spec["channels"]), cache_dir, budget) if grey else None
    result, start = {}, 0
    for split, (x, y) in arrays.items():
        out = x if target is None else target[start:start + len(x)]
        for first in range(0, len(x), 1024):
            chunk = np.asarray(x[first:first + 1024])
            if grey:
                chunk = np.stack([_channels(sample, 1) for sample in chunk]) if len(chunk) else chunk[..., :1]
            out[first:first + len(chunk)] = BYTE_FULL_SCALE - chunk if inverted else chunk
        result[split] = (out, y)
        start += len(x)
    return spec, result
