"""BatchNormalization alone: training forward, backward and inference forward on the presets' shapes.

    python benchmarks/batchnorm.py                # one thread, float32, 100 rounds
    python benchmarks/batchnorm.py --dtype float64 --rounds 300

The layer works on rows of ``k`` pixels (``normalization.wide_row_pixels``), because NumPy applies a per-channel
vector to rows of one pixel's channels much slower than to long rows. Each shape runs both ways, interleaved
in one process: "1 px" forces rows of one pixel (the layer's arithmetic otherwise unchanged), "k px" is the
layer as it is. CPU milliseconds, lower quartile of the rounds, each backward timed right after its own forward
as in a training step. The data stays in the cache here: inside a training step each pass over memory costs
2-3x more (benchmarks/cnn_profile.py measures that).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from unittest import mock

import numpy as np
from _report import print_table, set_threads

from NeuralNetworks.nn import layers
from NeuralNetworks.nn.layers import normalization

SHAPES = ((64, 14, 14, 32), (64, 14, 14, 64), (64, 7, 7, 64), (64, 4, 4, 128))  # the digits/doodles presets' BNs
WARMUP_ROUNDS = 10


def lower_quartile(seconds: list[float]) -> float:
    return 1e3 * sorted(seconds)[len(seconds) // 4]


def measure(shape: tuple[int, ...], dtype: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of each (way, pass), the two ways interleaved round by round."""
    rng = np.random.default_rng(0)
    x = (1.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    results: dict[str, list[float]] = {}
    ways = {}
    for way in ("1 px", "k px"):
        layer = ways[way] = layers.BatchNormalization()
        layer.build(shape[1:], rng, np.dtype(dtype))
    for round_number in range(WARMUP_ROUNDS + rounds):
        for way, layer in ways.items():
            one_pixel = mock.patch.object(normalization, "wide_row_pixels", lambda count, channels: 1)
            with one_pixel if way == "1 px" else contextlib.nullcontext():
                layer._split = (0, 1)  # choose the rows again under this way
                start = time.process_time()
                layer.forward(x, training=True)
                forward = time.process_time()
                layer.backward(grad)
                backward = time.process_time()
                layer.forward(x, training=False)
                inference = time.process_time()
            if round_number >= WARMUP_ROUNDS:
                for name, seconds in (("forward", forward - start), ("backward", backward - forward),
                                      ("inference", inference - backward)):
                    results.setdefault(f"{name} {way}", []).append(seconds)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    set_threads(1)
    print(f"# BatchNormalization, one thread, {args.dtype}, CPU ms (lower quartile of {args.rounds} rounds)\n")
    passes = ("forward", "backward", "inference")
    header = ["shape", *(f"{name} {way}" for name in passes for way in ("1 px", "k px"))]
    rows = []
    for shape in SHAPES:
        results = measure(shape, args.dtype, args.rounds)
        rows.append(["x".join(map(str, shape)), *(f"{lower_quartile(results[column]):.3f}" for column in header[1:])])
    print_table(header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
