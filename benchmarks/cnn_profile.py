"""Where one training step of each CNN case spends its time: im2col, products, col2im, pooling, ...

    python benchmarks/cnn_profile.py                 # all cores, every CNN case
    python benchmarks/cnn_profile.py --threads 1 --steps 40

Each layer's methods are wrapped with timers (the layers run their own code unchanged), a batch of 64 MNIST
images trains with Adam for ``--steps`` steps after a warm-up, and each part's median time per step is printed
in milliseconds and as a share of the median whole step. Parts:

- im2col: copying every window into the columns (``Conv2D._im2col``); col2im: adding the window gradients back
  (``Conv2D._col2im``); conv products: the rest of Conv2D's forward and backward (the matrix products, the bias);
- dense products: Dense's forward and backward without its activation;
- activations: every ``activate`` and activation backward (ReLU; softmax is fused with the loss);
- pooling, BatchNormalization, other layers (Rescaling, Flatten, Dropout), loss, optimizer (Adam's update).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from _contestants import CNN_KINDS, DEFAULT_DATA, Case, cnn_model, load_data
from speed import print_table, set_threads

from NeuralNetworks.nn import losses, optimizers

BATCH = 64
LEARNING_RATE = 0.001
WARMUP_STEPS = 5
PARTS = ("im2col", "conv products", "col2im", "dense products", "activations", "pooling", "BatchNormalization",
         "other layers", "loss", "optimizer")


class Clock:
    """Seconds per part, accumulated over one step: CPU seconds of this process with one thread (steadier on a
    machine shared with other work), wall-clock seconds with more."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.step: dict[str, float] = defaultdict(float)
        self.inner = 0.0  # time of nested timed calls, subtracted from the enclosing part

    def wrap(self, owner: object, method: str, part: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)  # keeps the signature the training plan inspects
        def timed(*args, **kwargs):
            outer_inner, self.inner = self.inner, 0.0
            start = self.now()
            result = original(*args, **kwargs)
            elapsed = self.now() - start
            self.step[part] += elapsed - self.inner
            self.inner = outer_inner + elapsed
            return result

        setattr(owner, method, timed)


def part_of(layer: object) -> str:
    kind = type(layer).__name__
    return {"Conv2D": "conv products", "Dense": "dense products", "MaxPooling2D": "pooling",
            "AveragePooling2D": "pooling", "BatchNormalization": "BatchNormalization"}.get(kind, "other layers")


def instrument(model, loss, optimizer, clock: Clock) -> None:
    for layer in model.layers:
        part = part_of(layer)
        for method in ("forward", "preactivation", "backward", "backward_preactivation"):
            if hasattr(layer, method):
                clock.wrap(layer, method, part)
        if hasattr(layer, "activate"):
            clock.wrap(layer, "activate", "activations")
            clock.wrap(layer.activation, "backward", "activations")
        for method, name in (("_im2col", "im2col"), ("_col2im", "col2im")):
            if hasattr(layer, method):
                clock.wrap(layer, method, name)
    clock.wrap(loss, "__call__", "loss")
    clock.wrap(loss, "logits_gradient", "loss")
    clock.wrap(optimizer, "apply", "optimizer")


def profile(kind: str, images: np.ndarray, labels: np.ndarray, steps: int,
            now: Callable[[], float]) -> tuple[dict[str, float], float]:
    """Median milliseconds per part and per whole step."""
    model = cnn_model(Case(kind, kind, BATCH, "adam"))
    loss, optimizer, clock = losses.SparseCategoricalCrossentropy(), optimizers.Adam(LEARNING_RATE), Clock(now)
    instrument(model, loss, optimizer, clock)  # before compile, which plans the backward calls
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(images[:BATCH * WARMUP_STEPS], labels[:BATCH * WARMUP_STEPS], batch_size=BATCH, verbose=0)
    parts: dict[str, list[float]] = defaultdict(list)
    totals = []
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(labels), BATCH, replace=False) for _ in range(steps)]
    x_all, y_all = model.prepare_data(images[np.concatenate(batches)], labels[np.concatenate(batches)])
    step: Callable[[np.ndarray, np.ndarray], object] = model.train_on_batch
    with model.blas_threads(BATCH):
        for i in range(steps):
            x, y = x_all[i * BATCH:(i + 1) * BATCH], y_all[i * BATCH:(i + 1) * BATCH]
            clock.step.clear()
            start = now()
            step(x, y)
            totals.append(now() - start)
            for part in PARTS:
                parts[part].append(clock.step.get(part, 0.0))
    return {part: 1e3 * statistics.median(values) for part, values in parts.items()}, 1e3 * statistics.median(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CNN_KINDS), choices=list(CNN_KINDS))
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per case (medians)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    data = load_data(DEFAULT_DATA, BATCH * (args.steps + WARMUP_STEPS) * 4, with_flat=False)
    clock = "CPU" if args.threads == 1 else "wall-clock"
    print(f"# One training step (batch {BATCH}, Adam), {args.threads} thread(s), median of {args.steps} steps, "
          f"{clock} ms; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    now = time.process_time if args.threads == 1 else time.perf_counter
    results = {kind: profile(kind, data.images, data.labels, args.steps, now) for kind in args.cases}
    names = [CNN_KINDS[kind] for kind in args.cases]
    header = ["part", *(f"{name} ms" for name in names), *(f"{name} %" for name in names)]
    rows = []
    for part in PARTS:
        rows.append([part, *(f"{results[k][0][part]:.2f}" for k in args.cases),
                     *(f"{100 * results[k][0][part] / results[k][1]:.0f}%" for k in args.cases)])
    rows.append(["whole step", *(f"{results[k][1]:.2f}" for k in args.cases), *("100%" for _ in args.cases)])
    print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
