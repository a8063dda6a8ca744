"""Peak memory of training on MNIST, next to the size of the uint8 dataset itself.

    python benchmarks/memory.py [--quick] [--data FOLDER]

Each measurement runs in a fresh child process: it loads the uint8 training images, builds
``presets.default_mlp`` (which rescales the uint8 pixels itself, batch by batch), and trains one epoch with Adam
at batch 128. Reported: the peak of memory allocated during ``fit`` (tracemalloc, which sees every NumPy
buffer) and the growth of the resident set (VmHWM, reset just before ``fit``). PyTorch, when installed, trains
the same architecture from a uint8 tensor in a child of its own (resident set only: tracemalloc cannot see it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

BATCH_SIZE = 128
QUICK_SAMPLES = 1024
ACTIVATION_BATCHES = 4  # allowance beyond the model's state: a few float32 input batches' worth of buffers
MIB = 2**20


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _child(framework: str, data_dir: Path, samples: int | None, threads: int | None) -> dict[str, float]:
    from _contestants import SEED, load_data
    from _report import set_threads

    if threads:
        set_threads(threads)

    from NeuralNetworks.nn import losses, optimizers, presets

    data = load_data(data_dir, samples, with_flat=False)
    images, labels = data.images, data.labels
    del data  # only the uint8 images and the labels stay alive, as in a real training script
    model = presets.default_mlp((28, 28, 1), 10, seed=SEED)
    state_arrays = 4  # parameters, gradients and Adam's two moments
    result = {"dataset_bytes": images.nbytes + labels.nbytes,
              "batch_bytes": BATCH_SIZE * int(np.prod(images.shape[1:])) * 4,
              "model_state_bytes": state_arrays * 4 * model.count_params()}
    if framework == "nn":
        model.compile(optimizer=optimizers.Adam(), loss=losses.SparseCategoricalCrossentropy())
        train = lambda: model.fit(images, labels, epochs=1, batch_size=BATCH_SIZE, verbose=0)  # noqa: E731
    else:
        train = _torch_training(model, images, labels)
    rss_before = _status_kib("VmRSS")
    resettable = _reset_peak_rss()
    tracemalloc.start()
    train()
    result["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1] if framework == "nn" else None
    tracemalloc.stop()
    peak = _status_kib("VmHWM")
    result["rss_growth_bytes"] = (peak - rss_before) * 1024 if resettable and peak and rss_before else None
    return result


def _torch_training(model, images: np.ndarray, labels: np.ndarray) -> Callable[[], None]:
    import torch
    from _contestants import SEED, torch_mirror

    torch.manual_seed(SEED)
    network = torch_mirror(model)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.001)
    loss_function = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def train() -> None:
        order = torch.randperm(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            index = order[start:start + BATCH_SIZE]
            loss = loss_function(network(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()

    return train


def measure(framework: str, data_dir: Path, quick: bool, threads: int | None) -> dict[str, float] | None:
    """Run one child process; None when it fails (e.g. PyTorch missing), with its error printed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework, "--data", str(data_dir)]
    if quick:
        command.append("--quick")
    if threads:
        command += ["--threads", str(threads)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        print(f"memory ({framework}): child failed: {lines[-1] if lines else completed.returncode}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def report(data_dir: Path, quick: bool, print_table: Callable[[list[str], list[list[str]]], None],
           threads: int | None = None) -> None:
    from _contestants import HAS_TORCH

    frameworks = ["nn", "torch"] if HAS_TORCH else ["nn"]
    rows = []
    for framework in frameworks:
        result = measure(framework, data_dir, quick, threads)
        if result is None:
            continue
        allowance = result["model_state_bytes"] + ACTIVATION_BATCHES * result["batch_bytes"]
        extra = result["traced_peak_bytes"] if framework == "nn" else result["rss_growth_bytes"]
        verdict = "-" if extra is None else f"{'ok' if extra <= allowance else 'MISS'} (<= {_mib(allowance)})"
        rows.append([framework, _mib(result["dataset_bytes"]), _mib(result["traced_peak_bytes"]),
                     _mib(result["rss_growth_bytes"]), _mib(result["model_state_bytes"]),
                     _mib(result["batch_bytes"]), verdict])
    print(f"## Peak memory of one epoch on MNIST (MiB; default_mlp, Adam, batch {BATCH_SIZE})\n")
    print_table(["framework", "uint8 dataset", "fit peak (traced)", "fit peak RSS growth", "model state",
                 "float32 batch", "target: extra <= state + 4 batches"], rows)
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of the MNIST files")
    parser.add_argument("--quick", action="store_true", help=f"train on {QUICK_SAMPLES} samples only")
    parser.add_argument("--threads", type=int, default=None, help="BLAS and PyTorch threads (default: theirs)")
    parser.add_argument("--child", choices=("nn", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _contestants import DEFAULT_DATA
    from _report import print_table

    data_dir = args.data or DEFAULT_DATA
    if args.child:
        print(json.dumps(_child(args.child, data_dir, QUICK_SAMPLES if args.quick else None, args.threads)))
        return 0
    report(data_dir, args.quick, print_table, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
