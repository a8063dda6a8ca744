"""Training and inference speed of NeuralNetworks against a hand-fused NumPy ceiling, PyTorch and scikit-learn.

    python benchmarks/speed.py                  # every case, 5 interleaved repeats, medians
    python benchmarks/speed.py --cases mlp16 infer --repeats 3
    python benchmarks/speed.py --quick          # seconds, for the smoke test

Every contestant trains on the same MNIST arrays (float32 in [0, 1] for the MLPs, uint8 images for the CNN, which
rescales them itself), shuffles every epoch, computes the loss every step and runs in this one process. A run
is one epoch over the first ``n`` samples, ``n`` calibrated so a run lasts about ``--seconds``; the repeats of
all contestants are interleaved so that a change in machine load hits them alike. PyTorch and scikit-learn
columns are left empty when they are not installed. See benchmarks/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import memory
import numpy as np
from _contestants import (
    DEFAULT_DATA,
    FACTORIES,
    HAS_SKLEARN,
    HAS_TORCH,
    SMALL_MLP,
    WIDE_MLP,
    Case,
    Data,
    Trainer,
    inference_calls,
    load_data,
    nn_model,
    sklearn_dtype,
    training_macs,
)
from _report import print_table, set_threads

FLOPS_PER_MAC_TRAINING = 6  # forward 2 (multiply + add), backward 2 for dL/dW and 2 for dL/dx
PEAK_MATMUL_SIZE = 2048
PEAK_REPEATS = 10
WARMUP_STEPS = 20
MIN_TIMED_STEPS = 8
IDLE_SAMPLE_SECONDS = 1.0
IDLE_ENOUGH_PERCENT = 90  # below this share of idle CPU time the machine is busy
QUICK_SAMPLES = 512  # samples the --quick smoke run uses
QUICK_SECONDS = 0.01
QUICK_PEAK_SIZE = 256
CONTESTANTS = ("nn", "ceiling", "torch", "sklearn")
MLP_TARGETS = {"ceiling": 0.80, "sklearn": 1.0}
CNN_TARGETS = {"torch": 1.2, "peak": 0.35}  # issue #20
TRAINING_CASES = [
    *(Case(f"mlp{batch}-{opt}", "mlp", batch, opt, SMALL_MLP, MLP_TARGETS)
      for opt in ("sgd", "adam") for batch in (16, 32, 128)),
    *(Case(f"wide128-{opt}", "mlp", 128, opt, WIDE_MLP, {**MLP_TARGETS, "torch": 0.9, "peak": 0.60})
      for opt in ("sgd", "adam")),
    Case("cnn64-adam", "cnn", 64, "adam", (), CNN_TARGETS),
    Case("cnn-digits64-adam", "digits", 64, "adam", (), CNN_TARGETS),
    Case("cnn-doodles64-adam", "doodles", 64, "adam", (), CNN_TARGETS),
    Case("residual64-adam", "residual", 64, "adam"),  # presets.residual_cnn: a functional model (not a CNN target)
]
INFERENCE_TARGETS = {"mlp": 3.0, "cnn": 1.5}  # NeuralNetworks at least this much faster than PyTorch on one image
OTHER_CASES = ("infer-mlp", "infer-cnn", "memory")


# -- machine -------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def blas_description() -> str:
    """NumPy's BLAS and its thread count, from threadpoolctl when available, else from np.show_config."""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        blas = [f"{i['internal_api']} {i.get('version') or ''} ({i.get('architecture') or '?'}, "
                f"{i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas"]
        if blas:
            return "; ".join(blas)
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return f"{config.get('name')} {config.get('version')}"


def matmul_peak_gflops(size: int, repeats: int) -> float:
    """Best float32 ``np.matmul`` rate on ``size x size`` matrices: the practical peak of this machine."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


# -- timing --------------------------------------------------------------------------------------------------
def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def calibrated_samples(train: Trainer, batch_size: int, available: int, seconds: float, warmup_steps: int) -> int:
    """Warm up, then pick a whole number of batches that takes about ``seconds``."""
    whole_batches = available // batch_size
    warmup = min(warmup_steps, whole_batches) * batch_size
    train(warmup)
    rate = warmup / timed(lambda: train(warmup))
    steps = int(rate * seconds) // batch_size
    return min(max(MIN_TIMED_STEPS, steps), whole_batches) * batch_size


def run_training_case(case: Case, data: Data, args: argparse.Namespace) -> dict[str, list[float]]:
    """samples/s of every available contestant, ``args.repeats`` runs each, interleaved."""
    trainers = {name: FACTORIES[name](case, data) for name in CONTESTANTS}
    trainers = {name: trainer for name, trainer in trainers.items() if trainer is not None}
    sizes = {name: calibrated_samples(trainer, case.batch_size, len(data.labels), args.seconds, args.warmup_steps)
             for name, trainer in trainers.items()}
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            n = sizes[name]
            rates[name].append(n / timed(lambda trainer=trainer, n=n: trainer(n)))
    return rates


def run_inference_case(case_name: str, data: Data, args: argparse.Namespace) -> dict[str, list[float]]:
    """Latency in seconds of every call, pooled over interleaved blocks of about ``seconds / 2`` each."""
    calls = inference_calls(case_name.removeprefix("infer-"), data)
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(args.warmup_steps):
            call()
    for _ in range(args.repeats):
        for name, call in calls.items():
            block_end = time.perf_counter() + args.seconds / 2
            while time.perf_counter() < block_end:
                latencies[name].append(timed(call))
    return latencies


# -- report --------------------------------------------------------------------------------------------------
def format_rate(values: list[float] | None) -> str:
    return "-" if not values else f"{statistics.median(values):,.0f}"


def ratio(numerator: list[float] | None, denominator: list[float] | None) -> float | None:
    if not numerator or not denominator:
        return None
    return statistics.median(numerator) / statistics.median(denominator)


def format_ratio(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if percent else f"{value:.2f}"


def verdicts(targets: dict[str, float], achieved: dict[str, float | None]) -> str:
    parts = []
    for key, goal in targets.items():
        value = achieved.get(key)
        if value is not None:
            shown = f"{100 * goal:.0f}%" if key == "peak" else f"{goal:g}x"
            parts.append(f"{key}>={shown} {'ok' if value >= goal else 'MISS'}")
    return ", ".join(parts)


def training_row(case: Case, rates: dict[str, list[float]], peak: float) -> list[str]:
    flops = FLOPS_PER_MAC_TRAINING * training_macs(nn_model(case)) / 1e9
    nn_rates = rates.get("nn")
    achieved = {"ceiling": ratio(nn_rates, rates.get("ceiling")), "torch": ratio(nn_rates, rates.get("torch")),
                "sklearn": ratio(nn_rates, rates.get("sklearn")),
                "peak": statistics.median(nn_rates) * flops / peak}
    torch_peak = statistics.median(rates["torch"]) * flops / peak if rates.get("torch") else None
    spread = max((max(v) - min(v)) / statistics.median(v) for v in rates.values())
    return [case.name, str(case.batch_size), *(format_rate(rates.get(name)) for name in CONTESTANTS),
            format_ratio(achieved["ceiling"]), format_ratio(achieved["torch"]), format_ratio(achieved["sklearn"]),
            format_ratio(achieved["peak"], percent=True), format_ratio(torch_peak, percent=True),
            f"{100 * spread:.0f}%", verdicts(case.targets, achieved)]


def inference_row(case_name: str, latencies: dict[str, list[float]]) -> list[str]:
    medians = {name: statistics.median(values) for name, values in latencies.items()}
    speedup = medians["torch"] / medians["nn predict"] if "torch" in medians else None
    cells = [f"{1e6 * medians[name]:.1f}" if name in medians else "-"
             for name in ("nn predict", "nn model(data)", "torch")]
    verdict = "-"
    target = INFERENCE_TARGETS[case_name.removeprefix("infer-")]
    if speedup is not None:
        verdict = f"torch/NN>={target:g}x {'ok' if speedup >= target else 'MISS'}"
    calls = min(len(values) for values in latencies.values())
    return [case_name, *cells, format_ratio(speedup), f"{calls:,}", verdict]


def selected(requested: list[str] | None, name: str) -> bool:
    return not requested or "all" in requested or any(name.startswith(token) for token in requested)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [case.name for case in TRAINING_CASES] + list(OTHER_CASES)
    parser.add_argument("--cases", nargs="+", metavar="CASE",
                        help=f"case names or prefixes (default all): {', '.join(names)}")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs per contestant (median)")
    parser.add_argument("--seconds", type=float, default=0.5, help="target duration of one timed run")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS and PyTorch threads")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST files")
    parser.add_argument("--quick", action="store_true", help="tiny data and runs: checks the script, not speed")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.seconds <= 0 or args.threads < 1:
        parser.error("--repeats and --threads must be positive integers and --seconds a positive number")
    unknown = [token for token in args.cases or [] if token != "all" and not any(n.startswith(token) for n in names)]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; expected names or prefixes of: {', '.join(names)}")
    args.samples, args.warmup_steps, args.peak_size = None, WARMUP_STEPS, PEAK_MATMUL_SIZE
    if args.quick:
        args.repeats, args.seconds, args.samples = min(args.repeats, 2), QUICK_SECONDS, QUICK_SAMPLES
        args.warmup_steps, args.peak_size = 1, QUICK_PEAK_SIZE
    return args


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores (Linux), else None."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its children: the ended ones, and the live ones (``fit``'s kept worker
    processes, see nn/forked_steps.py), which the system counts only once they end."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system + sum(
        live_cpu_seconds(child.pid) for child in multiprocessing.active_children())


def live_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of the running process ``pid`` (Linux), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def others_share(start: tuple[float, float] | None, own_start: float) -> float | None:
    """Percent of the machine's CPU time used by other processes since ``start``: the load we measured under."""
    end = cpu_seconds()
    if start is None or end is None:
        return None
    others = (end[0] - start[0]) - (own_cpu_seconds() - own_start)
    return max(0.0, 100 * others / max(end[1] - start[1], 1e-9))


def idle_percent(seconds: float = IDLE_SAMPLE_SECONDS) -> float | None:
    """Share of CPU time the whole machine spent idle over ``seconds``, None where /proc/stat is missing."""
    start = cpu_seconds()
    time.sleep(seconds)
    end = cpu_seconds()
    if start is None or end is None:
        return None
    return 100 - 100 * (end[0] - start[0]) / max(end[1] - start[1], 1e-9)


def machine_state() -> str:
    """Whether other work keeps the cores busy: multi-threaded BLAS and PyTorch then collapse."""
    idle = idle_percent()
    if idle is None:
        return f"- Load average before: {load_average()}"
    state = f"- CPU idle over {IDLE_SAMPLE_SECONDS:g} s before the run: {idle:.0f}%; load average {load_average()}"
    if idle < IDLE_ENOUGH_PERCENT:
        state += ("\n- WARNING: other processes use the CPU, so multi-threaded runs are unreliable "
                  "(use an idle machine, or --threads 1)")
    return state


def print_header(args: argparse.Namespace, data: Data, peak: float) -> None:
    print(f"# NeuralNetworks speed benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores")
    print(f"- Python {platform.python_version()}, NumPy {np.__version__}, BLAS: {blas_description()}")
    torch_text = "not installed"
    if HAS_TORCH:
        import torch

        torch_text = f"{torch.__version__}, {torch.get_num_threads()} threads"
    sklearn_text = "not installed"
    if HAS_SKLEARN:
        import sklearn

        sklearn_text = f"{sklearn.__version__}, computes in {sklearn_dtype(data)}"
    print(f"- PyTorch: {torch_text}; scikit-learn: {sklearn_text}")
    print(f"- Data: {data.source} ({len(data.labels):,} samples)")
    print(f"- float32 matmul peak ({args.peak_size}x{args.peak_size}, best of {PEAK_REPEATS}): {peak:.1f} GFLOP/s")
    print(f"- Runs: {args.repeats} interleaved repeats of ~{args.seconds:g} s per contestant; medians")
    print(machine_state())
    print()


def main(argv: list[str] | None = None) -> int:
    machine_start, own_start = cpu_seconds(), own_cpu_seconds()
    args = parse_args(argv)
    set_threads(args.threads)
    data = load_data(args.data, args.samples)
    peak = matmul_peak_gflops(args.peak_size, PEAK_REPEATS)
    print_header(args, data, peak)
    training = [case for case in TRAINING_CASES if selected(args.cases, case.name)]
    if training:
        rows = [training_row(case, run_training_case(case, data, args), peak) for case in training]
        print("## Training throughput (samples/s)\n")
        print_table(["case", "batch", "NN", "ceiling", "torch", "sklearn", "NN/ceil", "NN/torch", "NN/skl",
                     "NN peak", "torch peak", "spread", "targets"], rows)
        print()
    inference = [name for name in OTHER_CASES[:2] if selected(args.cases, name)]
    if inference:
        rows = [inference_row(name, run_inference_case(name, data, args)) for name in inference]
        print("## Single-image inference latency (median, microseconds)\n")
        print_table(["case", "NN predict", "NN model(data)", "torch", "torch/NN", "calls", "target"], rows)
        print()
    if selected(args.cases, "memory"):
        memory.report(args.data, quick=args.quick, print_table=print_table, threads=args.threads)
    others = others_share(machine_start, own_start)
    if others is not None:
        print(f"Other processes used {others:.0f}% of the machine's CPU time during the run.")
    print(f"Load average (1, 5, 15 min) after the run, which itself counts: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
