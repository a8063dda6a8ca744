"""Doodle classification of Quick, Draw! bicycles, cats and flowers with the library's canonical API sequence.

Each ``<class>.npy`` in the data folder holds 28x28 drawings flattened to 784 uint8 values (0 = background,
255 = ink). ``NeuralNetworks.data.quickdraw.load_quickdraw`` splits each class into training, validation and
test sets; the drawings are scaled to [0, 1] and fed to the
Flatten -> Dense(64) -> Dense(16) -> Dense(3, softmax) network trained with AdaGrad; the model is saved with
its labels, loaded back and asked about one drawing with ``model(data=img)``.

    python examples/doodles.py [--data-dir ../shared/data/quickdraw] [--save doodles.npz] [--plot doodles.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from NeuralNetworks.data.quickdraw import load_quickdraw
from NeuralNetworks.nn import layers, losses, metrics, models, optimizers

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "quickdraw"
LABELS = ["bicycle", "cat", "flower"]
PIXEL_SCALE = 1 / 255
VALIDATION_FRACTION = TEST_FRACTION = 0.1
EPOCHS, FAST_EPOCHS = 20, 2
BATCH_SIZE = 32
FAST_SAMPLES_PER_CLASS = 300
SEED = 0


def load_doodles(data_dir: Path, per_class: int | None, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images in [0, 1] (n, 28, 28, 1), one-hot labels)}`` for train, validation and test."""
    dataset = load_quickdraw(data_dir, classes=LABELS, max_per_class=per_class, test_fraction=TEST_FRACTION,
                             seed=seed).with_validation(VALIDATION_FRACTION, seed=seed)
    scale = np.float32(PIXEL_SCALE)
    return {"train": (dataset.x_train * scale, dataset.y_train_one_hot),
            "validation": (dataset.x_val * scale, dataset.y_val_one_hot),
            "test": (dataset.x_test * scale, dataset.y_test_one_hot)}


def plot(history: dict[str, list[float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(epochs, history["accuracy"], marker="o", label="training accuracy")
    axis.plot(epochs, history["val_accuracy"], marker="o", label="validation accuracy")
    axis.set(xlabel="epoch", ylabel="accuracy", title="Quick, Draw! bicycle / cat / flower, 784-64-16-3 MLP")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(data_dir: Path, model_dir: Path, fast: bool, seed: int, plot_path: str | None) -> int:
    started = time.perf_counter()
    data = load_doodles(data_dir, FAST_SAMPLES_PER_CLASS if fast else None, seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["validation"], data["test"]
    print(f"data: {len(x_train)} training, {len(x_val)} validation, {len(x_test)} test drawings of "
          f"{', '.join(LABELS)}")

    # The canonical sequence: build, compile, fit, save with labels, load, classify one image.
    model = models.Sequential(seed=seed)
    model.add(layers.Flatten(input_shape=(28, 28, 1)))
    model.add(layers.Dense(64, "Relu"))
    model.add(layers.Dense(16, "Relu"))
    model.add(layers.Dense(3, "Softmax"))
    model.compile(optimizer=optimizers.AdaGrad(0.01), loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=FAST_EPOCHS if fast else EPOCHS, batch_size=BATCH_SIZE,
                        validation_data=(x_val, y_val), verbose=2)
    model.save(model_dir, labels=LABELS)

    model = models.load(model_dir)
    test_accuracy = metrics.accuracy(y_test, model.predict(x_test))
    print(f"test accuracy: {test_accuracy:.4f}")
    img = x_test[0]
    label, scores = model(data=img)
    truth = LABELS[int(y_test[0].argmax())]
    print(f"prediction: {label} (true {truth}); scores: "
          + ", ".join(f"{name} {score:.3f}" for name, score in scores.items()))
    print(f"time: {time.perf_counter() - started:.1f} s")
    if plot_path:
        plot(history.history, plot_path)
        print(f"plot: {plot_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder of Quick, Draw! <class>.npy files (default: %(default)s)")
    parser.add_argument("--save", type=Path, help="model folder or file (default: a temporary folder)")
    parser.add_argument("--fast", action="store_true",
                        help=f"{FAST_SAMPLES_PER_CLASS} drawings per class, {FAST_EPOCHS} epochs; "
                             "exits 0 if the data is absent")
    parser.add_argument("--plot", metavar="PNG", help="save the accuracy curves to this PNG file")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    if not args.data_dir.is_dir():
        message = f"Quick, Draw! folder {args.data_dir} not found; pass --data-dir"
        if args.fast:
            print(f"skipped: {message}")
            return 0
        print(f"error: {message}", file=sys.stderr)
        return 2
    try:
        if args.save is not None:
            return run(args.data_dir, args.save, args.fast, args.seed, args.plot)
        with tempfile.TemporaryDirectory() as folder:
            return run(args.data_dir, Path(folder), args.fast, args.seed, args.plot)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
