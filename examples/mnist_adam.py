"""A 784-256-128-10 ReLU MLP trained with Adam on the real MNIST.

    python examples/mnist_adam.py [--data-dir ../shared/data/mnist] [--epochs 10] [--fast]

Target: at least 98% on the official 10,000-image test set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from NeuralNetworks.data.mnist import load_mnist
from NeuralNetworks.nn import layers, losses, models, optimizers, schedules

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "mnist"
FAST_SAMPLES = 2000
BATCH_SIZE = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fast", action="store_true", help="2,000 images and 1 epoch, for the tests")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        print(f"skipped: MNIST not found in {args.data_dir}")
        return

    data = load_mnist(args.data_dir)
    limit = FAST_SAMPLES if args.fast else None
    x_train, y_train = data.x_train[:limit], data.y_train[:limit]
    x_test, y_test = data.x_test[:limit], data.y_test[:limit]

    model = models.Sequential(name="mnist_adam", seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=data.input_shape))  # uint8 pixels stay uint8 in memory
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation="relu"))
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    epochs = 1 if args.fast else args.epochs
    # Cosine decay to zero over the run: big steps early, fine ones at the end, where a constant rate overfits.
    total_steps = epochs * -(-len(x_train) // BATCH_SIZE)
    learning_rate = schedules.CosineDecay(initial_learning_rate=1e-3, decay_steps=total_steps)
    model.compile(optimizer=optimizers.Adam(learning_rate=learning_rate),
                  loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH_SIZE, validation_split=0.1, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test)
    print(f"test accuracy: {accuracy:.4f} ({len(x_test)} images, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
