"""MNIST from the four IDX files: train until the validation loss plateaus, save, reload, test.

The IDX format is tiny: a big-endian magic number (0x803 for images, 0x801 for labels), one big-endian uint32
per dimension, then the raw uint8 values. A 784-128-64-10 ReLU network with a softmax output trains with Adam
on 90% of the training set; ``EarlyStopping(monitor="val_loss", restore_best_weights=True)`` stops it once the
loss on the other 10% has not improved for a few epochs and puts back the best epoch's weights. The model is
saved to one ``.npz`` file, loaded into a fresh model and scored on the 10,000 test images.

    python examples/mnist_idx.py [--data-dir ../shared/data/mnist] [--save mnist_mlp.npz] [--fast]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from NeuralNetworks.nn import callbacks, layers, losses, metrics, models, optimizers

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 0x803, 0x801
CLASSES = 10
PIXEL_SCALE = 1 / 255
MAX_EPOCHS, FAST_MAX_EPOCHS = 30, 3
PATIENCE = 2
VALIDATION_SPLIT = 0.1
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FAST_TRAIN_SAMPLES, FAST_TEST_SAMPLES = 2000, 500
SEED = 0


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """One IDX file (gzipped or raw) as a uint8 array of the shape its header announces."""
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{path}: magic number 0x{magic:x}, expected 0x{expected_magic:x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_file(data_dir: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: missing {stem}.gz (or {stem})")


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) float32 in [0, 1], labels (n,) int)`` for "train" or "test"."""
    images_stem, labels_stem = FILES[split]
    images = read_idx(find_file(data_dir, images_stem), IMAGES_MAGIC)
    labels = read_idx(find_file(data_dir, labels_stem), LABELS_MAGIC)
    return images.astype(np.float32) * np.float32(PIXEL_SCALE), labels.astype(np.intp)


def build_model(seed: int) -> models.Sequential:
    model = models.Sequential(name="mnist_mlp", seed=seed)
    model.add(layers.Flatten(input_shape=(28, 28)))
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
    x_train, y_train = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "test")
    if fast:
        x_train, y_train = x_train[:FAST_TRAIN_SAMPLES], y_train[:FAST_TRAIN_SAMPLES]
        x_test, y_test = x_test[:FAST_TEST_SAMPLES], y_test[:FAST_TEST_SAMPLES]
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
