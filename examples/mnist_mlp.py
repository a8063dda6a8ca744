"""The README snippet, verbatim, on the real MNIST: Flatten-64-16-10 with AdaGrad, 10 epochs, batch 16.

    python examples/mnist_mlp.py [--data-dir ../shared/data/mnist] [--fast]

Target: at least 96% on the official 10,000-image test set.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from NeuralNetworks.data.mnist import load_mnist
from NeuralNetworks.nn import layers, losses, models, optimizers

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "mnist"
FAST_SAMPLES = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--fast", action="store_true", help="2,000 images and 1 epoch, for the tests")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        print(f"skipped: MNIST not found in {args.data_dir}")
        return

    data = load_mnist(args.data_dir)
    limit = FAST_SAMPLES if args.fast else None
    x_train, y_train = data.x_train[:limit].astype("float32") / 255, data.y_train_one_hot[:limit]
    x_test, y_test = data.x_test[:limit].astype("float32") / 255, data.y_test_one_hot[:limit]
    input_shape = data.input_shape
    epochs = 1 if args.fast else 10
    model_dir = tempfile.mkdtemp(prefix="mnist_mlp_")
    img = x_test[0]
    started = time.perf_counter()

    model = models.Sequential()
    model.add(layers.Flatten(input_shape=input_shape))
    model.add(layers.Dense(units=64, activation="Relu"))
    model.add(layers.Dense(units=16, activation="Relu"))
    model.add(layers.Dense(units=len(data.label_dict), activation="Softmax"))
    model.summary()
    model.compile(optimizer=optimizers.AdaGrad(learning_rate=0.01),
                  loss=losses.CategoricalCrossentropy())
    model.fit(x_train, y_train, epochs=epochs, batch_size=16, validation_data=(x_test, y_test))
    model.save(model_dir=model_dir, labels=data.label_dict)

    model = models.load(model_dir)
    results = model(data=img)
    print(results)

    model.compile(optimizer="adagrad", loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    _, accuracy = model.evaluate(x_test, y_test)
    print(f"test accuracy: {accuracy:.4f} ({len(x_test)} images, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
