"""Peak memory and time of loading hostile model files, next to good ones, under the default budget.

    python benchmarks/hostile_files.py [--quick]

Each file is loaded by ``models.load`` in a fresh child process, which reports its peak resident set (VmHWM, Linux)
and how long the load took. The first row is the child importing the library and loading nothing: the baseline
every other row is measured against. Hostile files should cost nothing beyond it (they are refused from their
headers and config before anything is allocated); the largest models the budget admits show what "within the
budget" costs at most. ``--quick`` leaves out the files that take long to write (the bomb, 200,000 members, the
0.4 and 0.8 GB models) and runs in seconds: ``tests/test_benchmarks_smoke.py`` checks the script with it.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

MIB = 2**20
SHIPPED = Path(__file__).resolve().parents[1] / "src" / "NeuralNetworks" / "pretrained"
CHILD = """
import json, sys, time
from pathlib import Path
import NeuralNetworks.nn.models as models
from NeuralNetworks.nn.saving import ModelFileError
start = time.perf_counter()
outcome = "nothing loaded"
if sys.argv[1] != "-":
    try:
        model = models.load(sys.argv[1])
        outcome = f"loaded ({model.count_params():,} weights)"
    except ModelFileError as error:
        outcome = "refused: " + str(error).split(": ", 1)[1][:90]
status = Path("/proc/self/status").read_text().splitlines()
peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))  # this process's own peak
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start, "peak_mib": peak_kib / 1024}))
"""


def npy(array_or_header: np.ndarray | dict, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    if isinstance(array_or_header, dict):
        npy_format.write_array_header_1_0(buffer, array_or_header)
        return buffer.getvalue() + data
    npy_format.write_array(buffer, array_or_header)
    return buffer.getvalue()


def model_file(path: Path, layers: list[dict], input_shape: list[int], arrays: dict[str, object],
               dtype: str = "float32", config_text: str | None = None, compression: int = zipfile.ZIP_STORED) -> Path:
    config = {"format": "NeuralNetworks.Sequential", "version": 1,
              "model": {"name": "m", "dtype": dtype, "seed": 0, "input_shape": input_shape, "layers": layers}}
    raw = (config_text if config_text is not None else json.dumps(config)).encode()
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("__config__.npy", npy(np.frombuffer(raw, np.uint8)))
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                member.write(value if isinstance(value, bytes) else npy(value))
    return path


def dense(name: str, units: int) -> dict:
    return {"class_name": "Dense", "config": {"name": name, "units": units}}


def largest_admitted(path: Path, dtype: str) -> Path:
    """A Dense model with the budget's max_parameters weights and Adam's two slots for each: the most a file
    can make the loader allocate under the default budget."""
    from NeuralNetworks.budget import DEFAULT_BUDGET

    inputs, units = 784, DEFAULT_BUDGET.max_parameters // 785
    kernel = np.zeros((inputs, units), dtype)
    arrays = {"d/kernel": kernel, "d/bias": np.zeros(units, dtype)}
    arrays.update({f"optimizer/{key}/{slot}": value for key, value in list(arrays.items()) for slot in ("m", "v")})
    config = {"format": "NeuralNetworks.Sequential", "version": 1,
              "model": {"name": "m", "dtype": dtype, "seed": 0, "input_shape": [inputs], "layers": [dense("d", units)]},
              "compile": {"loss": "MeanSquaredError",
                          "optimizer": {"class_name": "Adam", "config": {}, "iterations": 1}}}
    return model_file(path, [], [inputs], arrays, config_text=json.dumps(config))


def hostile_files(folder: Path, quick: bool) -> list[tuple[str, Callable[[Path], Path] | Path | None]]:
    small = {"d/kernel": np.zeros((784, 3), np.float32), "d/bias": np.zeros(3, np.float32)}
    cases: list[tuple[str, Callable[[Path], Path] | Path | None]] = [
        ("baseline: import, load nothing", None),
        ("shipped doodles.npz", SHIPPED / "doodles.npz"),
        ("shipped digits.npz", SHIPPED / "digits.npz"),
        ("config: Dense(units=200000), small arrays", lambda p: model_file(p, [dense("d", 200_000)], [784], small)),
        ("config: Dense(units=10**12)", lambda p: model_file(p, [dense("d", 10**12)], [784], small)),
        ("config: input shape 60000x60000", lambda p: model_file(p, [dense("d", 3)], [60000, 60000], small)),
        ("config: 6 Conv2D(256) on 28x28 (compute)", lambda p: model_file(p, [
            {"class_name": "Conv2D", "config": {"name": f"c{i}", "filters": 256, "kernel_size": 3, "padding": "same"}}
            for i in range(6)], [28, 28, 1], {})),
        ("config: 5,000 layers", lambda p: model_file(p, [dense(f"d{i}", 3) for i in range(5000)], [3], {})),
        ("config: 4 MiB of nested [", lambda p: model_file(p, [], [1], {}, config_text="[" * (4 * MIB - 200))),
        ("config: integer of 1M digits", lambda p: model_file(p, [], [1], {}, config_text="9" * 10**6)),
        ("header: (10**9, 1000) float32 in 64 bytes", lambda p: model_file(p, [dense("d", 3)], [784], {
            "d/kernel": npy({"descr": "<f4", "fortran_order": False, "shape": (10**9, 1000)}, bytes(64)),
            "d/bias": np.zeros(3, np.float32)})),
    ]
    if not quick:
        cases += [("deflate bomb: 1 GiB of zeros in 1 MiB",
                   lambda p: _bomb(model_file(p, [dense("d", 3)], [784], small))),
                  ("zip: 200,000 empty members", lambda p: _many_members(p, 200_000)),
                  ("largest admitted: 33.5M float32 weights + Adam", lambda p: largest_admitted(p, "float32")),
                  ("largest admitted: 33.5M float64 weights + Adam", lambda p: largest_admitted(p, "float64"))]
    return cases


def _bomb(path: Path) -> Path:
    """Append a member of 1 GiB of zeros, deflated (written a chunk at a time: this process stays small)."""
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("zeros.npy", "w", force_zip64=True) as member:
        member.write(npy({"descr": "<f4", "fortran_order": False, "shape": (2**28,)}))
        for _ in range(2**30 // MIB):
            member.write(bytes(MIB))
    return path


def _many_members(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(count):
            archive.writestr(f"x{index}.npy", b"")
    return path


def measure(path: Path | None) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(path) if path else "-"], capture_output=True, text=True,
                         timeout=600, check=False)
    if run.returncode != 0:
        return {"outcome": f"CRASHED: {run.stderr.strip().splitlines()[-1][:90]}", "seconds": 0.0, "peak_mib": 0.0}
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the largest admitted models (GB files)")
    args = parser.parse_args()
    print("| file | size on disk | outcome | peak RSS (MiB) | above baseline (MiB) | seconds |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    baseline = None
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, make) in enumerate(hostile_files(Path(folder), args.quick)):
            path = make(Path(folder) / f"case{index}.npz") if callable(make) else make
            result = measure(path)
            baseline = result["peak_mib"] if baseline is None else baseline
            size = f"{path.stat().st_size / MIB:,.2f} MiB" if path else "-"
            print(f"| {name} | {size} | {result['outcome']} | {result['peak_mib']:,.0f} | "
                  f"{result['peak_mib'] - baseline:,.0f} | {result['seconds']:.2f} |", flush=True)
            if callable(make):
                path.unlink()


if __name__ == "__main__":
    main()
