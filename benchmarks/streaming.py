"""Training throughput streaming QuickDraw from its files (page cache warm) against the same drawings in memory.

    python benchmarks/streaming.py                                  # ../shared/data/quickdraw, default MLP
    python benchmarks/streaming.py --data /work/scratch/quickdraw345 --max-per-class 1000 --batch 32 64
    python benchmarks/streaming.py --quick                          # seconds: checks the script, not the speed

Both contestants train ``presets.default_mlp`` (Adam, seed 0) for one epoch over the training split of
``data.stream``: "in memory" gets it as uint8 arrays (``model.fit(x, y)``, gathered once beforehand, which also
warms the page cache), "streamed" gets the split itself (``model.fit(dataset.train)``: every batch is located by
the seeded bijections and read from the class files, a few batches ahead in a background thread). Runs
alternate, ``--repeats`` each, medians; the target is streamed >= 0.8x in memory. BLAS runs one thread
(``--threads``), which is what a busy machine allows; the machine's idle CPU is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from quickdraw_folder import write_folder
from speed import cpu_seconds, idle_percent, load_average, others_share, own_cpu_seconds, print_table, set_threads

from NeuralNetworks import data
from NeuralNetworks.nn import presets

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quickdraw"
TARGET = 0.8
QUICK_CLASSES, QUICK_DRAWINGS, QUICK_POOL = 4, 2000, 10


def train(dataset: data.StreamedDataset, arrays: tuple[np.ndarray, np.ndarray] | None, batch: int) -> float:
    """samples/s of one epoch, streamed (``arrays`` None) or from the arrays."""
    model = presets.default_mlp(dataset.input_shape, dataset.num_classes, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    if arrays is None:
        model.fit(dataset.train, epochs=1, batch_size=batch, verbose=0)
    else:
        model.fit(*arrays, epochs=1, batch_size=batch, verbose=0)
    return len(dataset.train) / (time.perf_counter() - start)


def measure(folder: Path, batches: list[int], args: argparse.Namespace) -> list[list[str]]:
    dataset = data.stream("quickdraw", folder, classes=args.classes, max_per_class=args.max_per_class)
    arrays = dataset.train.gather(np.arange(len(dataset.train)))
    rows = []
    for batch in batches:
        train(dataset, arrays, batch)  # warm-up of both paths
        train(dataset, None, batch)
        rates: dict[str, list[float]] = {"memory": [], "streamed": []}
        for _ in range(args.repeats):
            rates["memory"].append(train(dataset, arrays, batch))
            rates["streamed"].append(train(dataset, None, batch))
        memory, streamed = (statistics.median(rates[k]) for k in ("memory", "streamed"))
        spread = max((max(v) - min(v)) / statistics.median(v) for v in rates.values())
        rows.append([folder.name, f"{dataset.num_classes}", f"{len(dataset.train):,}", str(batch), f"{memory:,.0f}",
                     f"{streamed:,.0f}", f"{streamed / memory:.2f}", f"{100 * spread:.0f}%",
                     f">= {TARGET}x {'ok' if streamed / memory >= TARGET else 'MISS'}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_DATA], help="QuickDraw folders")
    parser.add_argument("--classes", nargs="+", help="classes to use (names, all, or a file)")
    parser.add_argument("--max-per-class", type=int, help="at most this many drawings per class")
    parser.add_argument("--batch", type=int, nargs="+", default=[64], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved epochs per contestant (median)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--quick", action="store_true", help="a tiny generated folder, one repeat")
    args = parser.parse_args(argv)
    if min(args.repeats, args.threads, *args.batch) < 1:
        parser.error("--repeats, --threads and --batch must be positive")
    set_threads(args.threads)
    machine_start, own_start = cpu_seconds(), own_cpu_seconds()
    with tempfile.TemporaryDirectory() as scratch:
        folders = args.data
        if args.quick:
            args.repeats, folders = 1, [Path(scratch) / "quick"]
            write_folder(folders[0], QUICK_CLASSES, QUICK_DRAWINGS, pool_per_shape=QUICK_POOL)
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            parser.error(f"no such folder: {', '.join(missing)} (generate one with benchmarks/quickdraw_folder.py)")
        print(f"# Streaming throughput, {time.strftime('%Y-%m-%d %H:%M')}\n")
        idle = idle_percent()
        print(f"- default MLP, Adam, one epoch of the training split per run; {args.repeats} interleaved runs, "
              f"medians; BLAS threads: {args.threads}")
        print(f"- CPU idle before: {'unknown' if idle is None else f'{max(0.0, idle):.0f}%'}; load average "
              f"{load_average()}\n")
        rows = [row for folder in folders for row in measure(folder, args.batch, args)]
    print_table(["folder", "classes", "train", "batch", "in memory/s", "streamed/s", "streamed/memory", "spread",
                 "target"], rows)
    others = others_share(machine_start, own_start)
    if others is not None:
        print(f"\nOther processes used {others:.0f}% of the machine's CPU time during the runs "
              f"({os.cpu_count()} cores).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
