"""One epoch over a 345-class, 3-million-drawing QuickDraw folder, streamed, in one process and in 2 MPI
processes: peak anonymous memory of each process and samples/s.

    python benchmarks/quickdraw_folder.py /work/scratch/quickdraw345      # once: 345 classes, 3,000,000 drawings
    python benchmarks/scale.py /work/scratch/quickdraw345                 # the API: fit(train), evaluate(validation)
    python benchmarks/scale.py /work/scratch/quickdraw345 --cli           # NeuralNetworks train --classes all ...
    python benchmarks/scale.py FOLDER --arch cnn --processes 2

Each process's anonymous resident memory (``RssAnon`` in /proc/PID/status: the heap and NumPy arrays, not the
memory-mapped class files, which are file-backed page cache shared by every process) is sampled every
``SAMPLE_SECONDS`` from outside, over the whole run; the target is below 1 GiB per process. The default mode
runs a worker that opens the folder with ``data.stream``, trains ``presets.default_<arch>`` one epoch on the
training split (global batch 64, Adam, BLAS on one thread per process) and evaluates the validation split,
timing each. ``--cli`` runs the command line instead (one epoch, validation and the test split included) and
reports its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speed import cpu_seconds, idle_percent, load_average, own_cpu_seconds, print_table

RESULT_PREFIX = "RESULT "
SAMPLE_SECONDS = 0.1
MEMORY_TARGET_BYTES = 2**30
BATCH = 64
KIB = 1024
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- the worker, in every process of the job ----------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    from NeuralNetworks import data
    from NeuralNetworks.nn import parallel, presets

    threadpool_limits(1, user_api="blas")
    dataset = data.stream("quickdraw", args.folder, classes="all")
    model = getattr(presets, f"default_{args.arch}")(dataset.input_shape, dataset.num_classes, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    trainer = parallel.trainer_for(model)
    start = time.perf_counter()
    history = trainer.fit(dataset.train, epochs=1, batch_size=args.batch, verbose=0)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    logs = trainer.evaluate(dataset.validation)
    evaluate_seconds = time.perf_counter() - start
    engine = getattr(trainer, "engine", None)
    print(RESULT_PREFIX + json.dumps({
        "rank": 0 if engine is None else engine.rank, "processes": 1 if engine is None else engine.size,
        "classes": dataset.num_classes, "train": len(dataset.train), "validation": len(dataset.validation),
        "drawings": dataset.drawings, "index_bytes": dataset.index_bytes, "parameters": model.count_params(),
        "train_seconds": train_seconds, "evaluate_seconds": evaluate_seconds,
        "loss": history.history["loss"][-1], "val_accuracy": logs["accuracy"]}), flush=True)


# -- memory of a process tree, from outside -----------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _is_trainer(pid: int) -> bool:
    """A process of the job that trains: the worker, or the command line (not the launcher)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    trains = b"--worker" in arguments or (b"NeuralNetworks" in arguments and b"train" in arguments)
    return trains and not arguments[0].endswith(b"mpiexec")


def _status(pid: int) -> dict[str, str]:
    try:
        return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    except OSError:
        return {}


def run_and_watch(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, dict[int, int], float]:
    """Run ``command``; peak RssAnon in bytes of every training process in its tree, and the wall time."""
    peaks: dict[int, int] = {}
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                          env={**os.environ, **ONE_THREAD}) as process:
        while process.poll() is None:
            pending, tree = [process.pid], []
            while pending:
                pid = pending.pop()
                tree.append(pid)
                pending += _children(pid)
            for pid in filter(_is_trainer, tree):
                anonymous = int(_status(pid).get("RssAnon", "0 kB").split()[0]) * KIB
                peaks[pid] = max(peaks.get(pid, 0), anonymous)
            time.sleep(SAMPLE_SECONDS)
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), peaks, time.perf_counter() - start


def launcher(processes: int) -> list[str]:
    if processes == 1:
        return []
    mpiexec = Path(sys.executable).parent / "mpiexec"
    return [str(mpiexec) if mpiexec.exists() else "mpiexec", "-hosts", "127.0.0.1", "-n", str(processes)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a QuickDraw folder (benchmarks/quickdraw_folder.py writes one)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--arch", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--batch", type=int, default=BATCH, help="global batch")
    parser.add_argument("--cli", action="store_true", help="run NeuralNetworks train instead of the worker")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: no such folder (write one with benchmarks/quickdraw_folder.py)")
    print(f"# One streamed epoch at scale, {time.strftime('%Y-%m-%d %H:%M')}\n")
    idle = idle_percent()
    print(f"- folder {args.folder}; default {args.arch}; global batch {args.batch}; 1 BLAS thread per process; "
          f"{'NeuralNetworks train' if args.cli else 'API worker'}")
    print(f"- CPU idle before: {'unknown' if idle is None else f'{max(0.0, idle):.0f}%'}; load average "
          f"{load_average()}\n")
    rows, details = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for processes in args.processes:
            if args.cli:
                command = [*launcher(processes), sys.executable, "-m", "NeuralNetworks", "train", "--dataset",
                           "quickdraw", "--data-dir", str(args.folder), "--classes", "all", "--stream", "--epochs",
                           "1", "--batch", str(args.batch), "--arch", args.arch, "--quiet", "--threads", "1",
                           "--out", "scale.npz"]
            else:
                command = [*launcher(processes), sys.executable, __file__, str(args.folder), "--worker", "--arch",
                           args.arch, "--batch", str(args.batch)]
            machine, own = cpu_seconds(), own_cpu_seconds()
            completed, peaks, wall = run_and_watch(command, Path(scratch))
            machine_after, own_after = cpu_seconds(), own_cpu_seconds()
            if completed.returncode != 0:
                raise SystemExit(f"error: the {processes}-process run failed:\n{completed.stderr[-3000:]}")
            others = "-"
            if machine is not None and machine_after is not None:
                busy, total = machine_after[0] - machine[0], max(machine_after[1] - machine[1], 1e-9)
                others = f"{max(0.0, 100 * (busy - (own_after - own)) / total):.0f}%"
            peak = max(peaks.values()) if peaks else 0
            verdict = f"< 1 GiB {'ok' if 0 < peak < MEMORY_TARGET_BYTES else 'MISS'}"
            results = [json.loads(line[len(RESULT_PREFIX):]) for line in completed.stdout.splitlines()
                       if line.startswith(RESULT_PREFIX)]
            if results:
                first = min(results, key=lambda r: r["rank"])
                rows.append([str(processes), f"{first['train']:,}", f"{first['train'] / first['train_seconds']:,.0f}",
                             f"{first['validation'] / first['evaluate_seconds']:,.0f}", f"{wall:.0f} s",
                             f"{peak / 2**20:.0f} MiB", others, verdict])
                details.append(f"{processes} process(es): {first['drawings']:,} drawings, {first['classes']} "
                               f"classes, index {first['index_bytes']:,} bytes, {first['parameters']:,} parameters; "
                               f"epoch loss {first['loss']:.3f}, val accuracy {first['val_accuracy']:.3f}; "
                               f"peak RssAnon per process: {', '.join(f'{p / 2**20:.0f} MiB' for p in peaks.values())}")
            else:
                lines = completed.stdout.strip().splitlines()
                rows.append([str(processes), "-", "-", "-", f"{wall:.0f} s", f"{peak / 2**20:.0f} MiB", others,
                             verdict])
                details.append(f"{processes} process(es): {' | '.join(lines[-4:])}; peak RssAnon per process: "
                               f"{', '.join(f'{p / 2**20:.0f} MiB' for p in peaks.values())}")
    print_table(["processes", "train drawings", "train samples/s", "validation samples/s", "wall", "peak RssAnon",
                 "others' CPU", "target"], rows)
    print()
    for line in details:
        print(f"- {line}")
    print(f"\nLoad average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
