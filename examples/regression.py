"""Regression of f(x, y) = (x + 4)^3 + 4y with a (2, 7, 7, 3, 1) tanh network trained by SGD.

Inputs are drawn uniformly from [-3, 3]^2. Both the inputs and the target are standardised with the training
set's mean and standard deviation (the target spans two orders of magnitude, which plain SGD on raw values
cannot follow); predictions are mapped back to the original units before scoring. Prints the test MSE and R^2,
and with ``--plot`` draws predicted against true values.

    python examples/regression.py [--plot regression.png] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from NeuralNetworks.nn import losses, models, optimizers

SIZES = (2, 7, 7, 3, 1)
INPUT_RANGE = 3.0
TRAIN_SAMPLES, TEST_SAMPLES = 4000, 1000
FAST_TRAIN_SAMPLES, FAST_TEST_SAMPLES = 500, 200
EPOCHS, FAST_EPOCHS = 150, 10
BATCH_SIZE = 16
LEARNING_RATE = 0.05
MOMENTUM = 0.9
SEED = 0


def target_function(points: np.ndarray) -> np.ndarray:
    """f(x, y) = (x + 4)^3 + 4y, one value per row of ``points``."""
    x, y = points[:, 0], points[:, 1]
    return ((x + 4) ** 3 + 4 * y)[:, np.newaxis]


class Standardizer:
    """z = (v - mean) / std with statistics from the training set only, and its inverse."""

    def __init__(self, values: np.ndarray) -> None:
        self.mean = values.mean(axis=0)
        self.std = values.std(axis=0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean


def r_squared(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 - SS_residual / SS_total: the fraction of the target's variance the model explains."""
    residual = np.sum((y_true - y_pred) ** 2)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1 - residual / total)


def plot(y_true: np.ndarray, y_pred: np.ndarray, r2: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(y_true, y_pred, s=6, alpha=0.5)
    low, high = float(y_true.min()), float(y_true.max())
    axis.plot([low, high], [low, high], color="black", linewidth=1, label="prediction = truth")
    axis.set(xlabel="true f(x, y)", ylabel="predicted",
             title=f"$f(x, y) = (x + 4)^3 + 4y$, test $R^2$ = {r2:.5f}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="few samples and epochs, for the test suite")
    parser.add_argument("--plot", metavar="PNG", help="save predicted vs true to this PNG file")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    n_train, n_test = (FAST_TRAIN_SAMPLES, FAST_TEST_SAMPLES) if args.fast else (TRAIN_SAMPLES, TEST_SAMPLES)
    points = rng.uniform(-INPUT_RANGE, INPUT_RANGE, size=(n_train + n_test, 2))
    values = target_function(points)
    x_train, x_test = points[:n_train], points[n_train:]
    y_train, y_test = values[:n_train], values[n_train:]
    x_scale, y_scale = Standardizer(x_train), Standardizer(y_train)

    model = models.Sequential.from_sizes(SIZES, activation="tanh", seed=args.seed)
    model.compile(optimizer=optimizers.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM),
                  loss=losses.MeanSquaredError())
    epochs = FAST_EPOCHS if args.fast else EPOCHS
    model.fit(x_scale.transform(x_train), y_scale.transform(y_train), epochs=epochs, batch_size=BATCH_SIZE,
              verbose=0)

    y_pred = y_scale.inverse(model.predict(x_scale.transform(x_test)))
    mse = float(np.mean((y_pred - y_test) ** 2))
    r2 = r_squared(y_test, y_pred)
    print(f"network: {SIZES}, tanh, SGD(lr={LEARNING_RATE}, momentum={MOMENTUM}), "
          f"{model.count_params()} weights")
    for point, truth, prediction in zip(x_test[:3], y_test[:3], y_pred[:3], strict=True):
        print(f"f({point[0]: .3f}, {point[1]: .3f}) = {truth[0]:8.3f}, predicted {prediction[0]:8.3f}")
    print(f"test MSE: {mse:.4f} (target variance {float(np.var(y_test)):.1f})")
    print(f"test R^2: {r2:.5f}")
    print(f"time: {time.perf_counter() - started:.1f} s")
    if args.plot:
        plot(y_test, y_pred, r2, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
