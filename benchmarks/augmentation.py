"""What the augmentation layers cost: training throughput of each network with and without them.

    python benchmarks/augmentation.py                      # the shipped presets, 5 interleaved repeats, medians
    python benchmarks/augmentation.py --arch digits --repeats 9 --threads 1
    python benchmarks/augmentation.py --quick              # seconds, for the smoke test

For each preset the same network is built twice, once as the preset (augmentation layers first) and once without
its augmentation layers, and both train one epoch on the same MNIST images (random ones if MNIST is absent) with
Adam. The runs alternate, so a change in machine load hits both alike. Also timed: each augmentation layer's
training-mode forward on one batch. Target (issue 14): augmentation slows training by at most 25%.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
DEFAULT_ARCHS = ("digits", "doodles")
BATCH_SIZE = 64
SAMPLES = 3_200  # per timed epoch: 50 batches
QUICK_SAMPLES = 256
LAYER_REPEATS = 50
TARGET_OVERHEAD = 0.25


def load_images(data_dir: Path, count: int) -> tuple[np.ndarray, np.ndarray, str]:
    from NeuralNetworks.data import load

    try:
        data = load("mnist", data_dir=data_dir)
    except (OSError, ValueError):
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, count),
                "RANDOM images of MNIST shape (MNIST not found)")
    return data.x_train[:count], data.y_train[:count], f"the first {count:,} MNIST training images"


def without_augmentation(model):
    """The same network (same layers and initial weights) minus its augmentation layers."""
    from NeuralNetworks.nn import layers, models

    twin = models.Sequential(name=f"{model.name}-plain", seed=model.seed)
    for layer in model.layers:
        if isinstance(layer, layers.RandomImageLayer):
            continue
        config = {key: value for key, value in layer.get_config().items() if key != "input_shape"}
        twin.add(layers.REGISTRY[type(layer).__name__].from_config(config))
    twin.build(model.input_shape)
    twin.set_weights(model.get_weights())
    return twin


def epoch_seconds(model, x: np.ndarray, y: np.ndarray) -> float:
    started = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, verbose=0)
    return time.perf_counter() - started


def layer_milliseconds(layer, batch: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        layer.forward(batch, training=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    from NeuralNetworks.nn import layers, presets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=list(DEFAULT_ARCHS), choices=sorted(presets.ARCHITECTURES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, help="BLAS threads (default: the library's own choice)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} samples, 1 repeat: checks the script")
    args = parser.parse_args(argv)
    samples, repeats = (QUICK_SAMPLES, 1) if args.quick else (SAMPLES, args.repeats)

    threads = contextlib.nullcontext()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threads = threadpool_limits(limits=args.threads, user_api="blas")
    x, y, source = load_images(args.data, samples)
    print(f"Data: {source}; batch {BATCH_SIZE}; {repeats} interleaved repeats, medians; "
          f"load average {os.getloadavg()[0]:.2f}; BLAS threads: {args.threads or 'automatic'}\n")
    rows, layer_rows = [], []
    with threads:
        for arch in args.arch:
            augmented = presets.ARCHITECTURES[arch]((28, 28, 1), 10, seed=0)
            plain = without_augmentation(augmented)
            for model in (augmented, plain):
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                model.fit(x[:2 * BATCH_SIZE], y[:2 * BATCH_SIZE], epochs=1, batch_size=BATCH_SIZE, verbose=0)
            times = {"with": [], "without": []}
            for _ in range(repeats):
                times["with"].append(epoch_seconds(augmented, x, y))
                times["without"].append(epoch_seconds(plain, x, y))
            with_rate = len(x) / statistics.median(times["with"])
            without_rate = len(x) / statistics.median(times["without"])
            overhead = without_rate / with_rate - 1
            verdict = "ok" if overhead <= TARGET_OVERHEAD else "MISS"
            rows.append((arch, f"{without_rate:,.0f}", f"{with_rate:,.0f}", f"{overhead:+.1%}",
                         f"<= {TARGET_OVERHEAD:.0%} {verdict}"))
            batch = np.asarray(x[:BATCH_SIZE], dtype=np.float32)
            step_ms = statistics.median(times["with"]) / -(-len(x) // BATCH_SIZE) * 1e3
            for layer in augmented.layers:
                if isinstance(layer, layers.RandomImageLayer):
                    ms = layer_milliseconds(layer, batch, 2 if args.quick else LAYER_REPEATS)
                    layer_rows.append((arch, f"{layer.name} ({type(layer).__name__})", f"{ms:.2f}",
                                       f"{ms / step_ms:.1%}"))
    print_table(("arch", "samples/s without", "samples/s with", "slower by", "target"), rows)
    print()
    print_table(("arch", "augmentation layer", f"ms per batch of {BATCH_SIZE}", "of a training step"), layer_rows)
    return 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print("| " + " | ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    sys.exit(main())
