"""MNIST from the four IDX files: train until the validation loss plateaus, save, reload, test.

The IDX format is tiny: a big-endian magic number (0x803 for images, 0x801 for labels), one big-endian uint32
per dimension, then the raw uint8 values; ``NeuralNetworks.data.mnist.load_mnist`` reads the four files (gzipped
or not) and checks them. A 784-128-64-10 ReLU network with a softmax output, which scales the uint8 pixels to
[0, 1] itself, trains with Adam on 90% of the training set;
``EarlyStopping(monitor="val_loss", restore_best_weights=True)`` stops it once the loss on the other 10% has not
improved for a few epochs and puts back the best epoch's weights. The model is saved to one ``.npz`` file,
loaded into a fresh model and scored on the 10,000 test images.

    python examples/mnist_idx.py [--data-dir ../shared/data/mnist] [--save mnist_mlp.npz] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from NeuralNetworks.data.mnist import load_mnist
from NeuralNetworks.nn import callbacks, layers, losses, metrics, models, optimizers

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
CLASSES = 10
PIXEL_SCALE = 1 / 255
MAX_EPOCHS, FAST_MAX_EPOCHS = 30, 3
PATIENCE = 2
VALIDATION_SPLIT = 0.1
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FAST_TRAIN_SAMPLES, FAST_TEST_SAMPLES = 2000, 500
SEED = 0


def load(data_dir: Path, fast: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test``: uint8 images (n, 28, 28, 1) and integer labels (n,)."""
    dataset = load_mnist(data_dir)  # reads the IDX headers and checks every size against them
    if not fast:
        return dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test
    return (dataset.x_train[:FAST_TRAIN_SAMPLES], dataset.y_train[:FAST_TRAIN_SAMPLES],
            dataset.x_test[:FAST_TEST_SAMPLES], dataset.y_test[:FAST_TEST_SAMPLES])


def build_model(seed: int) -> models.Sequential:
    model = models.Sequential(name="mnist_mlp", seed=seed)
    model.add(layers.Rescaling(PIXEL_SCALE, input_shape=(28, 28, 1)))  # uint8 pixels -> [0, 1], inside the model
    model.add(layers.Flatten())
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(learning_rate=LEARNING_RATE), loss=losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model


def plot(history: dict[str, list[float]], best_epoch: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(epochs, history["loss"], marker="o", label="training loss")
    axis.plot(epochs, history["val_loss"], marker="o", label="validation loss")
    axis.axvline(best_epoch + 1, color="gray", linestyle="--", label="best epoch (weights kept)")
    axis.set(xlabel="epoch", ylabel="cross-entropy", title="MNIST MLP: early stopping on validation loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(data_dir: Path, save_path: Path, fast: bool, seed: int, plot_path: str | None) -> int:
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = load(data_dir, fast)
    print(f"data: {len(x_train)} training and {len(x_test)} test images from {data_dir}")

    model = build_model(seed)
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)
    history = model.fit(x_train, np.eye(CLASSES, dtype=np.float32)[y_train], batch_size=BATCH_SIZE,
                        epochs=FAST_MAX_EPOCHS if fast else MAX_EPOCHS, validation_split=VALIDATION_SPLIT,
                        callbacks=[stopper], verbose=2)
    trained_epochs = len(history.history["loss"])
    print(f"trained {trained_epochs} epochs; best val_loss {stopper.best:.4f} at epoch {stopper.best_epoch + 1}"
          + (" (stopped early)" if stopper.stopped_epoch is not None else ""))

    written = model.save(save_path, labels=[str(digit) for digit in range(CLASSES)])
    reloaded = models.load(written)
    test_accuracy = metrics.accuracy(y_test, reloaded.predict(x_test))
    print(f"saved to {written} and reloaded")
    print(f"test accuracy: {test_accuracy:.4f}")
    label, scores = reloaded(data=x_test[0])
    print(f"first test image: predicted {label} ({scores[label]:.3f}), true {y_test[0]}")
    print(f"time: {time.perf_counter() - started:.1f} s")
    if plot_path:
        plot(history.history, stopper.best_epoch, plot_path)
        print(f"plot: {plot_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder of the four MNIST IDX files (default: %(default)s)")
    parser.add_argument("--save", type=Path, help="where to write the model (default: a temporary folder)")
    parser.add_argument("--fast", action="store_true",
                        help=f"{FAST_TRAIN_SAMPLES} training images, {FAST_MAX_EPOCHS} epochs at most; "
                             "exits 0 if the data is absent")
    parser.add_argument("--plot", metavar="PNG", help="save the loss curves to this PNG file")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    if not args.data_dir.is_dir():
        message = f"MNIST folder {args.data_dir} not found; pass --data-dir"
        if args.fast:
            print(f"skipped: {message}")
            return 0
        print(f"error: {message}", file=sys.stderr)
        return 2
    try:
        if args.save is not None:
            return run(args.data_dir, args.save, args.fast, args.seed, args.plot)
        with tempfile.TemporaryDirectory() as folder:
            return run(args.data_dir, Path(folder) / "mnist_mlp.npz", args.fast, args.seed, args.plot)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
