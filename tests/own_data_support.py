"""Small folders of images and CSV tables made in a temporary directory, for the tests of your own data."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "line", "square")
FORMATS = ("png", "jpg", "bmp", "gif", "webp")


def drawing(shape: str, rng: np.random.Generator, side: int = 32) -> Image.Image:
    """A dark outline of ``shape`` on light paper, in grey ("L")."""
    image = Image.new("L", (side, side), int(rng.integers(225, 256)))
    pen = ImageDraw.Draw(image)
    margin = int(rng.integers(3, side // 4))
    box = (margin, margin, side - margin, side - margin)
    ink = int(rng.integers(0, 40))
    if shape == "circle":
        pen.ellipse(box, outline=ink, width=3)
    elif shape == "square":
        pen.rectangle(box, outline=ink, width=3)
    else:
        pen.line(box, fill=ink, width=3)
    return image


def save_variant(image: Image.Image, path: Path, variant: int) -> Path:
    """Save ``image`` in one of several encodings: the five formats, RGB, 16-bit grey, transparent ink."""
    kind = variant % 8
    if kind == 5:  # RGB PNG of a grey drawing: still a grey folder
        image.convert("RGB").save(path := path.with_suffix(".png"))
    elif kind == 6:  # 16-bit grey PNG
        wide = (np.asarray(image, dtype=np.uint32) * 257).astype(np.uint16)
        Image.fromarray(wide).save(path := path.with_suffix(".png"))
    elif kind == 7:  # ink in the alpha channel of a transparent canvas
        ink = 255 - np.asarray(image)
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., 3] = ink
        Image.fromarray(rgba, "RGBA").save(path := path.with_suffix(".png"))
    else:
        image.save(path := path.with_suffix("." + FORMATS[kind]))
    return path


def make_drawings(root: Path, per_class: int = 12, seed: int = 0, classes: tuple[str, ...] = SHAPES,
                  side: int = 32) -> Path:
    """``root/<shape>/<i>.<ext>`` ink-on-paper drawings in mixed formats, plus a hidden file, a text file and
    a corrupt PNG that the loader must skip."""
    rng = np.random.default_rng(seed)
    for shape in classes:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            save_variant(drawing(shape, rng, side), root / shape / f"{index:03d}", index)
    first = root / classes[0]
    (first / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (first / "notes.txt").write_text("not an image")
    (root / classes[-1] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    return root


def make_colour_photos(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """``root/red`` and ``root/blue``: noisy colour pictures, in JPEG and PNG."""
    rng = np.random.default_rng(seed)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 90, (24, 24, 3), dtype=np.uint8)
            pixels[4:20, 4:20, channel] = rng.integers(160, 255, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{index}.{'jpg' if index % 2 else 'png'}")
    return root


def rotated_jpeg(image: Image.Image, orientation: int = 6) -> bytes:
    """``image`` stored turned, with the EXIF orientation that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = image.transpose(Image.Transpose.ROTATE_90)  # orientation 6 means: rotate 270 to view
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def make_table(path: Path, rows: int = 240, seed: int = 0, missing: bool = True) -> Path:
    """A CSV table: two numeric columns, one text column, a text target "kind" that depends on all three, with
    some cells empty, "NA" or "NaN" when ``missing``, and a "price" column (a float) for regression."""
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 3, rows)
    weight = rng.normal(50, 10, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    score = (size - 10) / 3 + (weight - 50) / 10 + np.where(colour == "red", 1.5, 0)
    kind = np.where(score > 0.5, "big", "small")
    price = 3 * size + 0.5 * weight + np.where(colour == "red", 10, 0) + rng.normal(0, 1, rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size", "weight", "colour", "price", "kind"])
        for index in range(rows):
            cells = [f"{size[index]:.3f}", f"{weight[index]:.2f}", colour[index], f"{price[index]:.2f}", kind[index]]
            if missing and index % 11 == 3:
                cells[0] = ("", "NA", "NaN")[index % 3]
            if missing and index % 13 == 5:
                cells[2] = ""
            writer.writerow(cells)
    return path
