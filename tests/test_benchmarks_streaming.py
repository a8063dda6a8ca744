"""The streaming, scaling and scale benchmarks run end to end on tiny inputs and print their tables; the folder
generator writes what it says. No timing is asserted."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TIMEOUT_SECONDS = 300
HAS_MPI = importlib.util.find_spec("mpi4py") is not None


def run(script: str, *arguments: str) -> str:
    completed = subprocess.run([sys.executable, str(BENCHMARKS / script), *arguments], capture_output=True,
                               text=True, timeout=TIMEOUT_SECONDS, check=False, cwd=BENCHMARKS)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from quickdraw_folder import write_folder
    finally:
        sys.path.remove(str(BENCHMARKS))
    path = tmp_path_factory.mktemp("generated")
    written = write_folder(path, classes=5, drawings=1003, pool_per_shape=4)
    assert sum(written.values()) == 1003 and len(written) == 5
    for name, count in written.items():
        bitmaps = np.load(path / f"{name}.npy", mmap_mode="r")
        assert bitmaps.shape == (count, 784) and bitmaps.dtype == np.uint8 and bitmaps.max() > 0
    return path


def test_streaming_benchmark_compares_both_paths():
    out = run("streaming.py", "--quick")
    assert re.search(r"^\| quick +\| 4 +\| [\d,]+ +\| 64 +\| [\d,]+ +\| [\d,]+ +\| \d\.\d\d ", out, re.MULTILINE)
    assert "CPU idle before" in out


def test_scale_benchmark_reports_memory_and_rate(folder):
    out = run("scale.py", str(folder), "--processes", "1")  # the same worker under mpiexec: see test_mpi.py
    assert re.search(r"^\| 1 +\| [\d,]+ +\| [\d,]+ +\| [\d,]+ +\| \d+ s +\| \d+ MiB .*\| < 1 GiB ok", out, re.MULTILINE)
    assert "index " in out and "5 classes" in out


@pytest.mark.skipif(not HAS_MPI, reason="the mpi extra (mpi4py, mpich) is not installed")
def test_scaling_benchmark_measures_and_predicts():
    out = run("parallel.py", "--quick")
    assert re.search(r"^\| 2 +\| [\d,]+ +\| \d+\.\d\dx +\| [\d.]+% ", out, re.MULTILINE)
    assert re.search(r"^\| 345 +\| 4\.\d\d MB \| 10 Gb/s Ethernet +\| 64 ", out, re.MULTILINE)
    assert "CPU idle before the runs" in out
