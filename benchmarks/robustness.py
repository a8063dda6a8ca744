"""How well models keep their accuracy when test drawings are shifted and rotated, as people draw them.

    python benchmarks/robustness.py                                   # the shipped digits model on MNIST
    python benchmarks/robustness.py --model before=old.npz --model after=src/NeuralNetworks/pretrained/digits.npz
    python benchmarks/robustness.py --dataset quickdraw --model doodles=src/NeuralNetworks/pretrained/doodles.npz

The test set (MNIST's official 10,000 images, or the held-back 20% of the QuickDraw classes that
``NeuralNetworks train --dataset quickdraw`` uses) is perturbed once, with a fixed seed, and every model is scored
on the same perturbed images. Shifts move each image by whole pixels, ink leaving the frame is lost; rotations
turn it about its centre with bilinear resampling (Pillow, independent of the library's augmentation layers).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SHIPPED = {"mnist": ROOT / "src/NeuralNetworks/pretrained/digits.npz",
           "quickdraw": ROOT / "src/NeuralNetworks/pretrained/doodles.npz"}
MAX_SHIFT = 3  # pixels, each axis
MAX_DEGREES = 15.0
SEED = 0
QUICK_IMAGES = 200

Perturbation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def shift(image: np.ndarray, down: int, right: int) -> np.ndarray:
    """``image`` moved by whole pixels, zeros coming in."""
    height, width = image.shape
    out = np.zeros_like(image)
    out[max(down, 0):height + min(down, 0), max(right, 0):width + min(right, 0)] = \
        image[max(-down, 0):height - max(down, 0), max(-right, 0):width - max(right, 0)]
    return out


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` turned counter-clockwise about its centre, bilinear, zeros coming in."""
    turned = Image.fromarray(image).rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=0)
    return np.asarray(turned, dtype=np.uint8)


def random_shift(image, rng):
    return shift(image, *rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=2))


def random_rotation(image, rng):
    return rotate(image, rng.uniform(-MAX_DEGREES, MAX_DEGREES))


def extreme_shift(image, rng):
    return shift(image, *(MAX_SHIFT * rng.choice([-1, 1], size=2)))


def extreme_rotation(image, rng):
    return rotate(image, MAX_DEGREES * rng.choice([-1, 1]))


def both(image, rng):
    return random_shift(random_rotation(image, rng), rng)


PERTURBATIONS: dict[str, Perturbation | None] = {
    "clean": None,
    f"shift <= {MAX_SHIFT} px (uniform in each axis)": random_shift,
    f"shift = {MAX_SHIFT} px in both axes": extreme_shift,
    f"rotation <= {MAX_DEGREES:g} deg (uniform)": random_rotation,
    f"rotation = +-{MAX_DEGREES:g} deg": extreme_rotation,
    f"rotation <= {MAX_DEGREES:g} deg, then shift <= {MAX_SHIFT} px": both,
}


def load_test_set(dataset: str, data_dir: Path):
    from NeuralNetworks.data import load

    options = {"seed": 0} if dataset == "quickdraw" else {}  # the split `NeuralNetworks train` uses by default
    return load(dataset, data_dir=data_dir, test_only=True, **options)


def perturbed(images: np.ndarray, perturbation: Perturbation | None) -> np.ndarray:
    if perturbation is None:
        return images
    rng = np.random.default_rng(SEED)
    return np.stack([perturbation(image[:, :, 0], rng) for image in images])[..., np.newaxis]


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    scores = model.predict(images.reshape(len(images), *model.input_shape))
    return float(np.mean(scores.argmax(axis=1) == labels))


def parse_models(entries: list[str], dataset: str) -> dict[str, Path]:
    if not entries:
        return {f"shipped {SHIPPED[dataset].stem}": SHIPPED[dataset]}
    models = {}
    for entry in entries:
        name, separator, path = entry.partition("=")
        if not separator or not name or not path:
            raise SystemExit(f"error: --model expects NAME=FILE. Received: {entry!r}")
        models[name] = Path(path)
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mnist", "quickdraw"), default="mnist")
    parser.add_argument("--data", type=Path, help="dataset folder (default: ../shared/data/<dataset>)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE", help="a model to score")
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_IMAGES} test images only")
    args = parser.parse_args(argv)

    from NeuralNetworks.nn import models as models_module

    data = load_test_set(args.dataset, args.data or SHARED_DATA / args.dataset)
    images, labels = data.x_test, data.y_test
    if args.quick:
        images, labels = images[:QUICK_IMAGES], labels[:QUICK_IMAGES]
    loaded = {name: models_module.load(path) for name, path in parse_models(args.model, args.dataset).items()}
    for name, model in loaded.items():
        if model.labels and [model.labels[i] for i in sorted(model.labels)] != data.class_names:
            raise SystemExit(f"error: model {name!r} has labels {list(model.labels.values())}, the {data.name} "
                             f"test set has {data.class_names}")
    print(f"{data.name} test set: {len(images)} images; perturbations drawn with seed {SEED}\n")
    width = max(len(name) for name in PERTURBATIONS)
    cell_widths = [max(len(name), len("100.00%")) for name in loaded]
    print(f"| {'test images'.ljust(width)} | " + " | ".join(
        name.rjust(cell) for name, cell in zip(loaded, cell_widths, strict=True)) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (cell + 2) for cell in cell_widths) + "|")
    for label, perturbation in PERTURBATIONS.items():
        x = perturbed(images, perturbation)
        cells = [f"{accuracy(model, x, labels):.2%}".rjust(cell)
                 for model, cell in zip(loaded.values(), cell_widths, strict=True)]
        print(f"| {label.ljust(width)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
