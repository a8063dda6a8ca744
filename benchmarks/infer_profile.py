"""Where one image's prediction spends its time, layer by layer: the default CNN and the two shipped models.

    python benchmarks/infer_profile.py                # all cores
    python benchmarks/infer_profile.py --threads 1 --calls 2000

Each layer's ``forward`` is wrapped with a timer (the layers run their own code unchanged); ``model.predict`` on
one MNIST image runs ``--calls`` times after a warm-up, and each layer's median microseconds per call is
printed, then their sum, the whole ``predict`` and what it spends outside the layers (checking the input, the
output's copy and finiteness check, the graph walk), and ``model(data=image)`` (``predict`` plus the ranked
``{label: score}``). The infer-cnn case of ``speed.py`` times the same default CNN against PyTorch.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from _contestants import DEFAULT_DATA, cnn_model, load_data
from speed import print_table, set_threads

from NeuralNetworks.app.registry import SHIPPED_MODELS
from NeuralNetworks.nn import models

WARMUP_CALLS = 100


def timed_layers(model: models.Model, now: Callable[[], float]) -> dict[str, list[float]]:
    """Wrap every layer's forward so that each call appends its seconds to the layer's list."""
    times: dict[str, list[float]] = {}
    for layer in model.layers:
        record = times.setdefault(f"{layer.name} ({type(layer).__name__})", [])
        original = layer.forward

        @functools.wraps(original)
        def forward(*args, original=original, record=record, **kwargs):
            start = now()
            result = original(*args, **kwargs)
            record.append(now() - start)
            return result

        layer.forward = forward
    return times


def median_us(call: Callable[[], object], calls: int, now: Callable[[], float]) -> float:
    times = []
    for _ in range(calls):
        start = now()
        call()
        times.append(now() - start)
    return 1e6 * statistics.median(times)


def profile(model: models.Model, image: np.ndarray, calls: int, now: Callable[[], float]) -> list[list[str]]:
    """Rows of (part, median microseconds) for one model."""
    batch = image[np.newaxis]
    for _ in range(WARMUP_CALLS):
        model.predict(batch)
    times = timed_layers(model, now)
    whole = median_us(lambda: model.predict(batch), calls, now)
    layers = {name: 1e6 * statistics.median(values) for name, values in times.items() if values}
    for layer in model.layers:
        vars(layer).pop("forward", None)  # the class's own forward again
    classify = median_us(lambda: model(data=image), calls, now)
    total = sum(layers.values())
    return [*([name, f"{value:.1f}"] for name, value in layers.items()), ["sum of the layers", f"{total:.1f}"],
            ["model.predict(one image)", f"{whole:.1f}"], ["  outside the layers", f"{whole - total:.1f}"],
            ["model(data=image)", f"{classify:.1f}"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed predictions per model (medians)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads")
    parser.add_argument("--models", nargs="+", default=["cnn", *SHIPPED_MODELS], choices=["cnn", *SHIPPED_MODELS])
    args = parser.parse_args(argv)
    if args.calls < 1 or args.threads < 1:
        parser.error("--calls and --threads must be positive integers")
    set_threads(args.threads)
    image = load_data(DEFAULT_DATA, 1, with_flat=False).images[0]
    now = time.perf_counter
    print(f"# One image through model.predict, {args.threads} thread(s), median of {args.calls} calls, "
          f"microseconds; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    for name in args.models:
        if name != "cnn" and not SHIPPED_MODELS[name].is_file():
            print(f"({name}: {SHIPPED_MODELS[name]} is not there)\n")
            continue
        model = cnn_model() if name == "cnn" else models.load(SHIPPED_MODELS[name])
        print(f"## {name}\n")
        print_table(["part", "us"], profile(model, image, args.calls, now))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
