"""The default CNN on the real MNIST (Conv-Pool-Conv-Pool-Dropout-Dense), Adam with a cosine learning-rate decay.

    python examples/mnist_cnn.py [--data-dir ../shared/data/mnist] [--epochs 8] [--fast]

Target: at least 99.0% on the official 10,000-image test set, training in under 15 minutes on 2 CPU cores.
The test set is used once, at the end; nothing is tuned on it here.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from NeuralNetworks.data import load_mnist
from NeuralNetworks.nn import losses, models, optimizers, presets, schedules

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "mnist"
EPOCHS = 8
BATCH_SIZE = 128
LEARNING_RATE = 3e-3  # peak of the cosine decay; Adam's usual 1e-3 needs more epochs for the same accuracy
FAST_TRAIN, FAST_TEST = 2000, 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help=f"{FAST_TRAIN:,} images and 1 epoch, for the tests")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"skipped: MNIST not found in {args.data_dir}")
        return

    data = load_mnist(args.data_dir)
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    epochs = args.epochs
    if args.fast:
        x_train, y_train, x_test, y_test = x_train[:FAST_TRAIN], y_train[:FAST_TRAIN], x_test[:FAST_TEST], \
            y_test[:FAST_TEST]
        epochs = 1

    model = presets.default_cnn(data.input_shape, data.num_classes, seed=args.seed)
    model.summary()
    steps = epochs * math.ceil(len(x_train) / BATCH_SIZE)
    model.compile(optimizer=optimizers.Adam(schedules.CosineDecay(LEARNING_RATE, decay_steps=steps)),
                  loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH_SIZE, verbose=2)
    train_seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(x_test, y_test)

    with tempfile.TemporaryDirectory(prefix="mnist_cnn_") as folder:
        path = model.save(Path(folder) / "mnist_cnn", labels=data.label_dict)
        size = path.stat().st_size
        reloaded = models.load(path)
        same = np.array_equal(reloaded.predict(x_test[:256]), model.predict(x_test[:256]))
        label, scores = reloaded(data=x_test[0])

    print(f"first test image: predicted {label!r} (score {scores[label]:.3f}), true {data.label_dict[y_test[0]]!r}")
    print(f"reloaded model predicts identically: {same}")
    print(f"parameters: {model.count_params():,}; saved file (optimizer included): {size / 1e6:.2f} MB")
    print(f"training: {epochs} epochs of {len(x_train):,} images in {train_seconds:.0f} s "
          f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs)")
    print(f"test accuracy: {accuracy:.4f} ({len(x_test):,} images)")


if __name__ == "__main__":
    main()
