"""Data-parallel scaling over MPI: 2 processes x 1 BLAS thread against 1 process x 1 thread, default CNN, one run.

    python benchmarks/parallel.py                    # 3 interleaved repeats of 1 and 2 processes, 40 steps each
    python benchmarks/parallel.py --repeats 5 --steps 80 --batch 64 --classes 10
    python benchmarks/parallel.py --quick            # seconds: checks the script, not the speed

Each run is ``mpiexec -n P python parallel.py --worker``: every process builds ``presets.default_cnn`` (seed 0),
holds the same random uint8 images, limits BLAS to one thread and trains ``--steps`` steps of global batch
``--batch`` (after a warm-up) with ``model.fit``, which is data-parallel under mpiexec. Reported: samples/s, the
speed-up over one process (target >= 1.7x for 2), and the share of the time spent in the engine's sums (the
gradient Allreduce and BatchNormalization's, waiting for the slower process included), measured on rank 0.

The runs of 1 and 2 processes are interleaved, and the machine's idle CPU is printed before the runs and for
each run (with the share other processes took): on a 2-core machine that other work keeps busy, 2 processes
cannot reach 2x, so compare only figures measured on an idle machine.

The last table is a prediction on paper for 8 and 64 processes (see docs/parallel.md for the model): a step is
the compute of B/P samples at the measured one-process rate, plus a ring Allreduce of the gradient buffer,
2 (P-1)/P x M / bandwidth + 2 (P-1) x latency, M = 4 bytes x parameters, for two stated networks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from speed import cpu_model, cpu_seconds, idle_percent, load_average, own_cpu_seconds, print_table

RESULT_PREFIX = "RESULT "
SCALING_TARGET = 1.7
DEFAULT_PROCESSES = (1, 2)
PREDICTED_PROCESSES = (8, 64)
PREDICTED_CLASSES = (10, 345)
NETWORKS = {  # name: (bandwidth in bytes/s, latency in s per message hop)
    "10 Gb/s Ethernet": (1.25e9, 20e-6),
    "100 Gb/s InfiniBand": (12.5e9, 2e-6),
}
ALLREDUCE_PROBES = 30
BYTES_PER_PARAMETER = 4  # float32 gradients
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- one run, in every process of the job -------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    from NeuralNetworks.nn import parallel, presets

    threadpool_limits(1, user_api="blas")
    engine = parallel.engine_from_environment()
    rng = np.random.default_rng(0)  # the same data in every process
    total = (args.warmup + args.steps) * args.batch
    images = rng.integers(0, 256, (total, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, args.classes, total)
    model = presets.default_cnn((28, 28, 1), args.classes, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    trainer = parallel.trainer_for(model)
    warm = args.warmup * args.batch
    trainer.fit(images[:warm], labels[:warm], epochs=1, batch_size=args.batch, verbose=0)
    communication_before = getattr(trainer, "communication_seconds", 0.0)
    start = time.perf_counter()
    trainer.fit(images[warm:], labels[warm:], epochs=1, batch_size=args.batch, verbose=0)
    seconds = time.perf_counter() - start
    communication = getattr(trainer, "communication_seconds", 0.0) - communication_before
    allreduce = allreduce_seconds(engine, model.flat.grads) if engine is not None else 0.0
    if engine is None or engine.rank == 0:
        print(RESULT_PREFIX + json.dumps({
            "processes": 1 if engine is None else engine.size, "samples_per_second": args.steps * args.batch / seconds,
            "seconds": seconds, "communication_seconds": communication, "parameters": model.count_params(),
            "allreduce_seconds": allreduce}), flush=True)


def allreduce_seconds(engine, gradients: np.ndarray) -> float:
    """Median time of one Allreduce of the gradient buffer alone, processes in step."""
    buffer, timings = gradients.copy(), []
    for _ in range(ALLREDUCE_PROBES):
        engine.sum(np.zeros(1))  # line the processes up
        start = time.perf_counter()
        engine.sum(buffer)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


# -- the parent: runs, tables -------------------------------------------------------------------------------------
def mpiexec() -> str:
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise SystemExit('error: mpiexec not found; install the mpi extra: pip install -e ".[mpi]"')
    return found


def run(processes: int, args: argparse.Namespace) -> dict:
    """One job of ``processes``; its result, with the machine's idle share and the others' share during it."""
    command = [mpiexec(), "-hosts", "127.0.0.1", "-n", str(processes), sys.executable, __file__, "--worker",
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
               "--classes", str(args.classes)]
    machine, own = cpu_seconds(), own_cpu_seconds()
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **ONE_THREAD},
                               check=False)
    machine_after, own_after = cpu_seconds(), own_cpu_seconds()
    if completed.returncode != 0:
        raise SystemExit(f"error: the {processes}-process run failed:\n{completed.stderr[-3000:]}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX):])
    if machine is not None and machine_after is not None:
        total = max(machine_after[1] - machine[1], 1e-9)
        busy = machine_after[0] - machine[0]
        result["idle_percent"] = 100 - 100 * busy / total
        result["others_percent"] = max(0.0, 100 * (busy - (own_after - own)) / total)
    return result


def ring_allreduce_seconds(parameters: int, processes: int, bandwidth: float, latency: float) -> float:
    """A ring Allreduce: a reduce-scatter then an all-gather, 2 (P-1) steps of M/P bytes each."""
    message = BYTES_PER_PARAMETER * parameters
    return 2 * (processes - 1) / processes * message / bandwidth + 2 * (processes - 1) * latency


def cnn_parameters(classes: int) -> int:
    from NeuralNetworks.nn import presets

    return presets.default_cnn((28, 28, 1), classes).count_params()


def prediction_rows(seconds_per_sample: float, batch: int) -> list[list[str]]:
    rows = []
    for classes in PREDICTED_CLASSES:
        parameters = cnn_parameters(classes)
        for network, (bandwidth, latency) in NETWORKS.items():
            for processes in PREDICTED_PROCESSES:
                allreduce = ring_allreduce_seconds(parameters, processes, bandwidth, latency)
                for kind, global_batch in (("global", batch), ("per process", batch * processes)):
                    label = f"{batch} {kind}"
                    compute = global_batch / processes * seconds_per_sample
                    rate = global_batch / (compute + allreduce)
                    rows.append([str(classes), f"{BYTES_PER_PARAMETER * parameters / 1e6:.2f} MB", network,
                                 str(processes), label, f"{1e3 * allreduce:.2f} ms",
                                 f"{100 * allreduce / (compute + allreduce):.0f}%", f"{rate:,.0f}",
                                 f"{rate * seconds_per_sample:.1f}x"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=list(DEFAULT_PROCESSES))
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per process count (median)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--classes", type=int, default=10, help="outputs of the CNN (10: the QuickDraw set here)")
    parser.add_argument("--quick", action="store_true", help="a few tiny steps: checks the script, not the speed")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.warmup, args.batch = 1, 3, 1, 8
    if min(args.repeats, args.steps, args.warmup, args.batch, args.classes, *args.processes) < 1:
        parser.error("--processes, --repeats, --steps, --warmup, --batch and --classes must be positive")
    if args.worker:
        worker(args)
        return 0
    print(f"# Data-parallel scaling, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; each process uses 1 BLAS thread")
    print(f"- Model: presets.default_cnn, {args.classes} classes, {cnn_parameters(args.classes):,} parameters; "
          f"Adam; global batch {args.batch}; {args.steps} timed steps after {args.warmup}; {args.repeats} "
          "interleaved repeats, medians")
    idle = idle_percent()
    print(f"- CPU idle before the runs: {'unknown' if idle is None else f'{max(0.0, idle):.0f}%'}; load average "
          f"{load_average()}\n")
    results: dict[int, list[dict]] = {p: [] for p in args.processes}
    for _ in range(args.repeats):
        for processes in args.processes:
            results[processes].append(run(processes, args))
    base = statistics.median(r["samples_per_second"] for r in results[min(args.processes)]) * 1.0
    rows = []
    for processes, runs in results.items():
        rate = statistics.median(r["samples_per_second"] for r in runs)
        share = statistics.median(r["communication_seconds"] / r["seconds"] for r in runs)
        speedup = rate / base * min(args.processes)
        verdict = f">= {SCALING_TARGET}x {'ok' if speedup >= SCALING_TARGET else 'MISS'}" if processes == 2 else "-"
        allreduce = statistics.median(r["allreduce_seconds"] for r in runs)
        step = statistics.median(r["seconds"] for r in runs) / args.steps
        rows.append([str(processes), f"{rate:,.0f}", f"{speedup:.2f}x", f"{100 * share:.1f}%",
                     f"{1e3 * allreduce:.3f} ms", f"{100 * allreduce / step:.2f}%",
                     " / ".join(f"{max(0.0, r.get('idle_percent', float('nan'))):.0f}%" for r in runs),
                     " / ".join(f"{r.get('others_percent', float('nan')):.0f}%" for r in runs), verdict])
    print("## Measured\n")
    print_table(["processes", "samples/s", "speed-up", "in sums", "one Allreduce", "Allreduce/step",
                 "CPU idle during", "others' CPU during", "target"], rows)
    print("\n`in sums`: share of the training time rank 0 spent in the engine's sums, waiting for the slower "
          "process included;\n`one Allreduce`: the gradient buffer alone, processes in step; `Allreduce/step`: "
          "its share of a step.")
    seconds_per_sample = 1 / statistics.median(r["samples_per_second"] for r in results[min(args.processes)])
    print(f"\n## On paper: ring Allreduce of float32 gradients, compute at {1 / seconds_per_sample:,.0f} samples/s "
          "per process\n")
    print_table(["classes", "message", "network", "processes", "batch", "Allreduce", "in Allreduce", "samples/s",
                 "speed-up"], prediction_rows(seconds_per_sample, args.batch))
    print(f"\nLoad average after the runs: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
