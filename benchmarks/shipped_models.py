"""The shipped models' figures: test accuracy, size, and the latency of one drawing through the app's serving path.

    python benchmarks/shipped_models.py                      # the two shipped models
    python benchmarks/shipped_models.py --model old=old.npz --model new=src/NeuralNetworks/pretrained/digits.npz

A model's dataset follows its preprocessing: "mnist" models are scored on the official MNIST test set, "quickdraw"
models on the held-back 20% of their classes in ``../shared/data/quickdraw`` (the split ``NeuralNetworks train
--dataset quickdraw`` uses, seed 0). Latency is what the app spends per request once the drawing is a bitmap
(``ServedModel.top_k``: scores and top 3), and the same plus turning strokes into that bitmap
(``ServedModel.preprocess``), one drawing at a time, after a warm-up; medians and 99th percentiles.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
LATENCY_CALLS = 500
WARMUP_CALLS = 20
TARGET_MS = 5.0
TARGET_MB = 2.0
SPIRAL_POINTS = 150


def spiral_strokes() -> list[list[list[float]]]:
    """A 150-point stroke in screen pixels, like a quick doodle on the app's canvas."""
    angles = np.linspace(0, 4 * math.pi, SPIRAL_POINTS)
    return [[[200 + 12 * a * math.cos(a), 200 + 12 * a * math.sin(a)] for a in angles]]


def test_set(served):
    from NeuralNetworks.data import load

    if served.style == "mnist":
        return load("mnist", data_dir=SHARED_DATA / "mnist", test_only=True)
    return load("quickdraw", data_dir=SHARED_DATA / "quickdraw", classes=served.labels, seed=0, test_only=True)


def milliseconds(call, repeats: int) -> tuple[float, float]:
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    return float(p50), float(p99)


def figures(name: str, path: Path, repeats: int) -> tuple[str, ...]:
    """One table row: the model's test accuracy, size and one-drawing latencies."""
    from NeuralNetworks import serving

    served = serving.load_model(path, name)
    data = test_set(served)
    scores = served.model.predict(data.x_test)
    accuracy = float(np.mean(scores.argmax(axis=1) == data.y_test))
    bitmaps = data.x_test[:, :, :, 0]
    count = iter(range(10**9))
    predict = milliseconds(lambda: served.top_k(bitmaps[next(count) % len(bitmaps)]), repeats)
    strokes = spiral_strokes()
    answer = milliseconds(lambda: served.top_k(served.preprocess(strokes=strokes)), repeats)
    size = path.stat().st_size / 1e6
    verdict = ", ".join([f"latency {'ok' if predict[0] < TARGET_MS else 'MISS'}",
                         f"size {'ok' if size < TARGET_MB else 'MISS'}"])
    return (name, f"{data.name} ({len(data.x_test):,})", f"{accuracy:.2%}", f"{served.model.count_params():,}",
            f"{size:.2f}", f"{predict[0]:.2f} / {predict[1]:.2f}", f"{answer[0]:.2f} / {answer[1]:.2f}", verdict)


def main(argv: list[str] | None = None) -> int:
    from NeuralNetworks.app import registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--repeats", type=int, default=LATENCY_CALLS, help="timed predictions per model")
    args = parser.parse_args(argv)
    paths = {name: Path(path) for name, _, path in (entry.partition("=") for entry in args.model)} \
        if args.model else dict(registry.SHIPPED_MODELS)

    print(f"load average {os.getloadavg()[0]:.2f}; {args.repeats} timed drawings per model, one at a time\n")
    header = ("model", "test set", "accuracy", "params", "file MB", "predict p50/p99 ms",
              "strokes->answer p50/p99 ms", "targets")
    rows = []
    for name, path in paths.items():
        rows.append(figures(name, path, args.repeats))
        print(f"{name}: done", file=sys.stderr, flush=True)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print("| " + " | ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    print(f"\ntargets: one-drawing prediction under {TARGET_MS:g} ms, file under {TARGET_MB:g} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
