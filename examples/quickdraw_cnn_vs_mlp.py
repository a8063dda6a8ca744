"""The default CNN against the default MLP on the ten Quick, Draw! classes, on the same held-back 20% split.

    python examples/quickdraw_cnn_vs_mlp.py [--data-dir ../shared/data/quickdraw] [--epochs 12] [--fast]

Both networks get the same recipe (Adam, cosine decay from 2e-3, batch 128, the same epochs) and are scored
once, at the end, on the 20% of every class held back from training. Target: the CNN wins by >= 4 points.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

from NeuralNetworks.data import load_quickdraw
from NeuralNetworks.nn import losses, optimizers, presets, schedules

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "quickdraw"
EPOCHS = 12
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
TEST_FRACTION = 0.2
FAST_PER_CLASS = 200
ARCHITECTURES = {"mlp": presets.default_mlp, "cnn": presets.default_cnn}


def train_and_score(arch: str, dataset, epochs: int, seed: int) -> tuple[float, float, int]:
    """Test accuracy, training seconds and parameter count of one default network."""
    model = ARCHITECTURES[arch](dataset.input_shape, dataset.num_classes, seed=seed)
    steps = epochs * math.ceil(len(dataset.x_train) / BATCH_SIZE)
    model.compile(optimizer=optimizers.Adam(schedules.CosineDecay(LEARNING_RATE, decay_steps=steps)),
                  loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=BATCH_SIZE, verbose=2)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(dataset.x_test, dataset.y_test)
    return accuracy, seconds, model.count_params()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true",
                        help=f"{FAST_PER_CLASS} drawings per class and 1 epoch, for the tests")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"skipped: Quick, Draw! not found in {args.data_dir}")
        return

    dataset = load_quickdraw(args.data_dir, test_fraction=TEST_FRACTION, seed=args.seed,
                             max_per_class=FAST_PER_CLASS if args.fast else None)
    epochs = 1 if args.fast else args.epochs
    print(f"{dataset.num_classes} classes ({', '.join(dataset.class_names)}): {len(dataset.x_train):,} training "
          f"and {len(dataset.x_test):,} held-back drawings; load average {os.getloadavg()[0]:.1f}")
    results = {}
    for arch in ARCHITECTURES:
        print(f"\n{arch}:")
        results[arch] = train_and_score(arch, dataset, epochs, args.seed)

    print("\n| network | parameters | training time | held-back accuracy |")
    print("| --- | --- | --- | --- |")
    for arch, (accuracy, seconds, count) in results.items():
        print(f"| default {arch} | {count:,} | {seconds:.0f} s | {accuracy:.2%} |")
    gain = 100 * (results["cnn"][0] - results["mlp"][0])
    print(f"\nCNN - MLP: {gain:+.1f} points (target: >= +4)")


if __name__ == "__main__":
    main()
