"""Softmax + cross-entropy classification of three interleaved spirals, with the decision regions plotted.

The data is the classic toy set of CS231n's "Putting it together" notes: for class k, points at radius r in
[0, 1] and angle 4k + 4r plus Gaussian noise. A 2-64-64-3 ReLU network with a softmax output learns the
spirals; the softmax and the categorical cross-entropy are fused, so the gradient at the logits is
(y_hat - y) / m (see docs/backpropagation.md). Prints the train and test accuracy; with ``--plot`` draws each
class's region over the points.

    python examples/spirals.py [--plot spirals.png] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from NeuralNetworks.nn import layers, losses, metrics, models, optimizers

CLASSES = 3
POINTS_PER_CLASS, FAST_POINTS_PER_CLASS = 300, 100
ANGLE_NOISE = 0.2
TURN_PER_CLASS = 4.0  # radians of angle each spiral arm sweeps
EPOCHS, FAST_EPOCHS = 300, 30
BATCH_SIZE = 32
LEARNING_RATE = 0.01
HIDDEN_UNITS = 64
TARGET_ACCURACY = 0.95
GRID_STEPS = 300
CLASS_COLORS = ("#e41a1c", "#377eb8", "#4daf4a")
SEED = 0


def make_spirals(points_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(points (n, 2) float32, labels (n,) int)`` for ``CLASSES`` noisy spiral arms."""
    radius = np.tile(np.linspace(0.0, 1.0, points_per_class), CLASSES)
    labels = np.repeat(np.arange(CLASSES), points_per_class)
    angle = TURN_PER_CLASS * (labels + radius) + rng.normal(0.0, ANGLE_NOISE, size=radius.shape)
    points = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]).astype(np.float32)
    return points, labels


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(CLASSES, dtype=np.float32)[labels]


def build_model(seed: int) -> models.Sequential:
    model = models.Sequential(name="spirals", seed=seed)
    model.add(layers.Dense(HIDDEN_UNITS, activation="relu", input_shape=(2,)))
    model.add(layers.Dense(HIDDEN_UNITS, activation="relu"))
    model.add(layers.Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    return model


def plot(model: models.Sequential, points: np.ndarray, labels: np.ndarray, accuracy: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    low, high = points.min(axis=0) - 0.1, points.max(axis=0) + 0.1
    grid_x, grid_y = np.meshgrid(np.linspace(low[0], high[0], GRID_STEPS),
                                 np.linspace(low[1], high[1], GRID_STEPS))
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(np.float32)
    regions = model.predict(grid).argmax(axis=1).reshape(grid_x.shape)

    colors = ListedColormap(CLASS_COLORS)
    figure, axis = plt.subplots(figsize=(6, 6))
    axis.contourf(grid_x, grid_y, regions, levels=np.arange(CLASSES + 1) - 0.5, cmap=colors, alpha=0.25)
    axis.scatter(points[:, 0], points[:, 1], c=labels, cmap=colors, vmin=0, vmax=CLASSES - 1, s=10,
                 edgecolors="black", linewidths=0.2)
    axis.set(title=f"Spirals: decision regions, test accuracy {accuracy:.1%}", xlabel="x", ylabel="y")
    axis.set_aspect("equal")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="fewer points and epochs, for the test suite")
    parser.add_argument("--plot", metavar="PNG", help="save the decision regions to this PNG file")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    per_class = FAST_POINTS_PER_CLASS if args.fast else POINTS_PER_CLASS
    x_train, y_train = make_spirals(per_class, rng)
    x_test, y_test = make_spirals(per_class, rng)

    model = build_model(args.seed)
    model.fit(x_train, one_hot(y_train), epochs=FAST_EPOCHS if args.fast else EPOCHS, batch_size=BATCH_SIZE,
              verbose=0)
    train_accuracy = metrics.accuracy(y_train, model.predict(x_train))
    test_accuracy = metrics.accuracy(y_test, model.predict(x_test))
    print(f"train accuracy: {train_accuracy:.4f}")
    print(f"test accuracy: {test_accuracy:.4f} (target > {TARGET_ACCURACY})")
    print(f"time: {time.perf_counter() - started:.1f} s")
    if args.plot:
        plot(model, x_test, y_test, test_accuracy, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
