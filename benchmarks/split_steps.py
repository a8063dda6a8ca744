"""What splitting each training batch over the cores gives (``nn.split_steps``), case by case.

    python benchmarks/split_steps.py                      # the CNN cases, the residual CNN, the wide MLP
    python benchmarks/split_steps.py --cases cnn --repeats 7

Every case trains one epoch of ``--samples`` MNIST images (batch as in speed.py, Adam) four ways, interleaved
``--repeats`` times in one process (medians): BLAS on one thread; BLAS on all cores without the split (the
library as it was); all cores with every batch split over threads (what ``fit`` does where it may not fork,
and for a model's first short fit), and over forked processes (what it does on Linux for a fit of
``split_steps.MIN_FORKED_STEPS`` steps or more and for a model fitted again; "-" where processes are not
available). Each timed epoch is its own ``fit``: the first repeat of the processes forks them, the next ones
reuse the model's kept workers (as ``fit`` does), so the median shows the steps once running; the threads
reuse their replicas likewise. The last column says whether
``fit`` splits that case by itself (``split_steps.MIN_PART_MULTIPLY_ADDS``). Needs an idle machine: with
another process on one of two cores, every multi-threaded figure measures the scheduler.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _contestants import DEFAULT_DATA, WIDE_MLP, Case, load_data, nn_model
from _report import print_table

from NeuralNetworks.nn import losses, optimizers, split_steps
from NeuralNetworks.nn._threads import blas_controller

CASES = {"cnn": Case("cnn64-adam", "cnn", 64, "adam"),
         "cnn-digits": Case("cnn-digits64-adam", "digits", 64, "adam"),
         "cnn-doodles": Case("cnn-doodles64-adam", "doodles", 64, "adam"),
         "residual": Case("residual64-adam", "residual", 64, "adam"),
         "wide": Case("wide128-adam", "mlp", 128, "adam", WIDE_MLP)}
WARMUP_BATCHES = 4
QUICK_SAMPLES = 256
NEVER = 1 << 62  # a split threshold no step reaches


def never() -> bool:
    return False


def trained(case: Case, data, batches: int):
    model = nn_model(case)
    model.compile(optimizer=optimizers.Adam(0.001), loss=losses.SparseCategoricalCrossentropy())
    x = data.flat if case.kind == "mlp" else data.images
    model.fit(x[:batches * case.batch_size], data.labels[:batches * case.batch_size], batch_size=case.batch_size,
              verbose=0)
    return model, x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--samples", type=int, default=1280, help="training samples per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder of the MNIST files")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} samples, one repeat: checks the script")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.repeats = QUICK_SAMPLES, 1
    controller = blas_controller()
    cores = min(split_steps.available_cores(), split_steps.blas_threads(controller))
    data = load_data(args.data, args.samples, with_flat=True)
    threshold, may_fork, min_steps = (split_steps.MIN_PART_MULTIPLY_ADDS, split_steps.forking_allowed,
                                      split_steps.MIN_FORKED_STEPS)
    print(f"# One epoch of {args.samples} samples, {args.repeats} interleaved repeats, medians; {cores} cores; "
          f"data: {data.source}\n")
    rows = []
    for name in args.cases:
        case = CASES[name]
        ways = {"1 thread": (1, NEVER, False), f"{cores} BLAS threads": (cores, NEVER, False),
                "threads": (cores, 0, False)}
        if may_fork():
            ways["processes"] = (cores, 0, True)
        models = {way: trained(case, data, WARMUP_BATCHES) for way in ways}
        rates: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, (threads, split_threshold, forked) in ways.items():
                model, x = models[way]
                split_steps.MIN_PART_MULTIPLY_ADDS = split_threshold
                split_steps.forking_allowed = may_fork if forked else never
                split_steps.MIN_FORKED_STEPS = 0  # processes whenever allowed, however short the epoch
                with controller.limit(limits=threads, user_api="blas"):
                    start = time.perf_counter()
                    model.fit(x[:args.samples], data.labels[:args.samples], batch_size=case.batch_size, verbose=0)
                    rates[way].append(args.samples / (time.perf_counter() - start))
        split_steps.MIN_PART_MULTIPLY_ADDS, split_steps.forking_allowed = threshold, may_fork
        split_steps.MIN_FORKED_STEPS = min_steps
        medians = {way: statistics.median(rates[way]) for way in ways}
        one, blas = medians["1 thread"], medians[f"{cores} BLAS threads"]
        split = [medians.get(way) for way in ("threads", "processes")]
        spread = max((max(v) - min(v)) / statistics.median(v) for v in rates.values())
        parts = split_steps.part_count(models["1 thread"][0], case.batch_size, cores)
        rows.append([case.name, f"{one:,.0f}", f"{blas:,.0f}",
                     *("-" if rate is None else f"{rate:,.0f} ({rate / one:.2f}x)" for rate in split),
                     f"{spread:.0%}", "yes" if parts > 1 else "no"])
    print_table(["case", "1 thread", "all cores, BLAS only", "split over threads (vs 1 thread)",
                 "split over processes (vs 1 thread)", "spread", "fit splits"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
