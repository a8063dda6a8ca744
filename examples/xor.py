"""XOR, the classic first network: Dense(2->3, tanh), Dense(3->1, tanh), mean squared error, SGD.

Trains one sample at a time (batch 1, learning rate 0.1) until the mean squared error over the four points is
below 1e-3, then prints each prediction and the error.

    python examples/xor.py [--plot xor.png]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from NeuralNetworks.nn import callbacks, layers, losses, models, optimizers

TARGET_ERROR = 1e-3
MAX_EPOCHS = 5000
LEARNING_RATE = 0.1
SEED = 1

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


class StopBelowError(callbacks.Callback):
    """Stop training once the model's loss on the whole training set drops below ``target``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, target: float) -> None:
        self.x, self.y, self.target = x, y, target
        self.errors: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        error = float(self.model.evaluate(self.x, self.y))
        self.errors.append(error)
        if error < self.target:
            self.model.stop_training = True


def build_model(seed: int) -> models.Sequential:
    model = models.Sequential(name="xor", seed=seed)
    model.add(layers.Dense(units=3, activation="tanh", input_shape=(2,)))
    model.add(layers.Dense(units=1, activation="tanh"))
    model.compile(optimizer=optimizers.SGD(learning_rate=LEARNING_RATE), loss=losses.MeanSquaredError())
    return model


def plot(errors: list[float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.semilogy(range(1, len(errors) + 1), errors)
    axis.axhline(TARGET_ERROR, color="gray", linestyle="--", label=f"target {TARGET_ERROR:g}")
    axis.set(xlabel="epoch", ylabel="mean squared error",
             title="XOR: 2-3-1 tanh network, SGD lr 0.1, batch 1")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true",
                        help="accepted for uniformity: XOR already trains in well under a second")
    parser.add_argument("--plot", metavar="PNG", help="save the error curve to this PNG file")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    model = build_model(args.seed)
    stopper = StopBelowError(X, Y, TARGET_ERROR)
    model.fit(X, Y, epochs=MAX_EPOCHS, batch_size=1, shuffle=True, callbacks=[stopper], verbose=0)

    predictions = model.predict(X)
    for sample, target, prediction in zip(X, Y, predictions, strict=True):
        print(f"input {sample.astype(int).tolist()} -> prediction {prediction[0]: .4f} "
              f"(target {target[0]:.0f})")
    error = float(model.loss(Y, predictions))
    print(f"epochs: {len(stopper.errors)}")
    print(f"error: {error:.6f} (target < {TARGET_ERROR:g})")
    print(f"time: {time.perf_counter() - started:.1f} s")
    if args.plot:
        plot(stopper.errors, args.plot)
        print(f"plot: {args.plot}")
    return 0 if error < TARGET_ERROR else 1


if __name__ == "__main__":
    sys.exit(main())
