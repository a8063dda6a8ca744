"""Where one image's prediction spends its time, layer by layer: the default CNN and the two shipped models.

    python benchmarks/infer_profile.py                # all cores
    python benchmarks/infer_profile.py --threads 1 --calls 2000

Each layer's ``forward`` (and ``preactivation`` and ``activate``, which the graph calls itself where it runs
ReLU after max pooling) is wrapped with a timer (the layers run their own code unchanged); ``model.predict`` on
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


TIMED_METHODS = ("forward", "preactivation", "activate")  # the graph calls the last two itself when it runs
# ReLU after max pooling (nn.graph): a Conv2D's time is then its preactivation plus its activate


def timed_layers(model: models.Model, now: Callable[[], float]) -> dict[str, float]:
    """Wrap every layer's forward, preactivation and activate so that each adds its seconds to the layer's
    running total (a call made inside another of the same layer's is not counted twice)."""
    totals: dict[str, float] = {}
    for layer in model.layers:
        name = f"{layer.name} ({type(layer).__name__})"
        totals[name] = 0.0
        inside = [False]
        for method in TIMED_METHODS:
            if not hasattr(layer, method):
                continue
            original = getattr(layer, method)

            @functools.wraps(original)
            def timed(*args, original=original, name=name, inside=inside, **kwargs):
                if inside[0]:
                    return original(*args, **kwargs)
                inside[0] = True
                start = now()
                try:
                    return original(*args, **kwargs)
                finally:
                    totals[name] += now() - start
                    inside[0] = False

            setattr(layer, method, timed)
    return totals


def profile(model: models.Model, image: np.ndarray, calls: int, now: Callable[[], float]) -> list[list[str]]:
    """Rows of (part, median microseconds) for one model."""
    batch = image[np.newaxis]
    for _ in range(WARMUP_CALLS):
        model.predict(batch)
    totals = timed_layers(model, now)
    per_call: dict[str, list[float]] = {name: [] for name in totals}
    wholes = []
    for _ in range(calls):
        for name in totals:
            totals[name] = 0.0
        start = now()
        model.predict(batch)
        wholes.append(now() - start)
        for name, seconds in totals.items():
            per_call[name].append(seconds)
    whole = 1e6 * statistics.median(wholes)
    layers = {name: 1e6 * statistics.median(values) for name, values in per_call.items() if any(values)}
    for layer in model.layers:
        for method in TIMED_METHODS:
            vars(layer).pop(method, None)  # the class's own methods again
    classify = median_us(lambda: model(data=image), calls, now)
    total = sum(layers.values())
    return [*([name, f"{value:.1f}"] for name, value in layers.items()), ["sum of the layers", f"{total:.1f}"],
            ["model.predict(one image)", f"{whole:.1f}"], ["  outside the layers", f"{whole - total:.1f}"],
            ["model(data=image)", f"{classify:.1f}"]]


def median_us(call: Callable[[], object], calls: int, now: Callable[[], float]) -> float:
    times = []
    for _ in range(calls):
        start = now()
        call()
        times.append(now() - start)
    return 1e6 * statistics.median(times)


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
