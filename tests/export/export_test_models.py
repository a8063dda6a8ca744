"""Models and real images for the export tests: a model with every layer type, the shipped models, and 500
real drawings in the style each model was trained on (QuickDraw bitmaps or MNIST test digits)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from NeuralNetworks.nn import layers, models

PRETRAINED = Path(__file__).resolve().parents[2] / "src" / "NeuralNetworks" / "pretrained"
IMAGES_PER_SET = 500
KERNEL_GAIN = 4.0  # random kernels' standard deviation times sqrt(fan-in)


def shipped_models() -> list[Path]:
    """Every model file the package ships, whatever they are today."""
    return sorted(PRETRAINED.glob("*.npz"))


def every_layer_model(seed: int = 0) -> models.Sequential:
    """A 28x28 classifier using every layer type and activation, odd and even kernels, strides and "same"
    padding whose odd pixel goes after, BatchNormalization on 4-D, 3-D and 2-D input, with random statistics."""
    model = models.Sequential(name="every_layer", seed=seed)
    for layer in (
        layers.RandomFlip("horizontal", input_shape=(28, 28, 1)),          # augmentation: gone at inference
        layers.Rescaling(1 / 127.5, offset=-1.0),
        layers.RandomTranslation(0.1, 0.1),
        layers.Conv2D(6, 2, padding="same", activation="leaky_relu"),       # even kernel: 1 pixel after
        layers.BatchNormalization(epsilon=1e-2),
        layers.RandomRotation(0.05),
        layers.RandomZoom(0.1),
        layers.Conv2D(8, 3, strides=2, padding="same", activation="tanh"),  # 28 -> 14
        layers.MaxPooling2D(3, strides=2, padding="same"),                  # 14 -> 7, pads (0, 1)
        layers.AveragePooling2D(2, strides=1, padding="same"),              # pads (0, 1), real pixels averaged
        layers.Activation("softmax"),                                       # over the channels of a 4-D tensor
        layers.Conv2D(8, (4, 3), strides=(1, 2), activation="sigmoid"),     # valid: 7x7 -> 4x3
        layers.Reshape((12, 8)),
        layers.BatchNormalization(),                                        # 3-D input
        layers.Reshape((4, 3, 8)),
        layers.Conv2D(16, 1, activation="relu", use_bias=False),
        layers.GlobalAveragePooling2D(),
        layers.Dense(12, activation="linear"),
        layers.Activation({"name": "leaky_relu", "alpha": 0.2}),
        layers.Dropout(0.3),
        layers.BatchNormalization(center=False),                            # 2-D input, no beta
        layers.Reshape((2, 2, 3)),
        layers.Conv2D(4, 2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ):
        model.add(layer)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, value in (*layer.params.items(), *layer.state.items()):
            if key == "kernel":  # large enough that different images give clearly different outputs
                value[...] = rng.normal(0, KERNEL_GAIN / np.sqrt(np.prod(value.shape[:-1])), value.shape)
            else:
                low = 0.5 if key in ("moving_variance", "gamma") else -0.5
                value[...] = rng.uniform(low, low + 1.0, value.shape)
    return model


def _read_idx_images(path: Path) -> np.ndarray:
    data = gzip.open(path).read()
    count, rows, columns = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, columns)


def real_images(folder: Path, style: str, count: int = IMAGES_PER_SET) -> np.ndarray:
    """``count`` real 28x28 uint8 drawings (n, 28, 28) from ``folder``: MNIST test digits (style "mnist", the
    MNIST folder), or QuickDraw bitmaps taken evenly from every class file (the QuickDraw folder)."""
    if style == "mnist":
        return _read_idx_images(folder / "t10k-images-idx3-ubyte.gz")[:count].copy()
    files = sorted(folder.glob("*.npy"))
    per_class = -(-count // len(files))
    bitmaps = np.concatenate([np.load(path, mmap_mode="r")[:per_class] for path in files])
    return bitmaps[:count].reshape(-1, 28, 28).copy()


def images_for(model: models.Sequential, mnist_dir: Path, quickdraw_dir: Path) -> np.ndarray:
    """Real drawings of the kind ``model`` was trained on, shaped as its input, float32 0..255."""
    style = "mnist" if model.preprocessing == "mnist" else "quickdraw"
    images = real_images(mnist_dir if style == "mnist" else quickdraw_dir, style)
    return images.astype(np.float32).reshape(len(images), *model.input_shape)


def varied_drawings(count: int, seed: int = 0) -> list[list[list[list[float]]]]:
    """``count`` drawings as strokes of [x, y] points: hand-drawn-looking shapes from the shapes renderer, and
    random scribbles of every awkward kind (single points, repeated points, straight lines, tiny and huge
    coordinates, empty strokes, many strokes)."""
    from NeuralNetworks.data import shapes

    rng = np.random.default_rng(seed)
    drawings = []
    for index in range(count):
        if index % 2 == 0:
            name = shapes.CLASS_NAMES[(index // 2) % len(shapes.CLASS_NAMES)]
            drawings.append([stroke.tolist() for stroke in shapes.draw_shape(name, rng)])
            continue
        scale, origin = 10.0 ** rng.uniform(-2, 4), rng.uniform(-500, 500, 2)
        strokes = []
        for _ in range(int(rng.integers(1, 6))):
            kind = rng.integers(5)
            length = int(rng.integers(1, 40))
            if kind == 0:  # a random walk
                points = np.cumsum(rng.normal(0, 1, (length, 2)), axis=0)
            elif kind == 1:  # a straight horizontal or vertical line: no extent along one axis
                points = np.zeros((length, 2))
                points[:, rng.integers(2)] = np.linspace(0, rng.uniform(1, 5), length)
            elif kind == 2:  # one point, repeated or alone: a dot
                points = np.repeat(rng.normal(0, 3, (1, 2)), length, axis=0)
            elif kind == 3:  # an empty stroke, skipped by both
                points = np.zeros((0, 2))
            else:  # points on a circle
                angles = np.linspace(0, rng.uniform(1, 7), length)
                points = np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(1, 4)
            strokes.append((points * scale + origin).tolist())
        if sum(len(stroke) for stroke in strokes) < 2:
            strokes.append([[0.0, 0.0], [scale, scale]])
        drawings.append(strokes)
    return drawings
