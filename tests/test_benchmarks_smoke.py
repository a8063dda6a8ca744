"""The speed benchmark runs end to end in its tiny --quick mode and prints every table; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TIMEOUT_SECONDS = 300
TRAINING_ROW = re.compile(r"^\| (mlp16-sgd|wide128-adam|cnn64-adam) +\| \d+ +\| [\d,]+ ")


@pytest.fixture(scope="module")
def quick_output() -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed.py"), "--quick", "--threads", "1",
         "--cases", "mlp16-sgd", "wide128-adam", "cnn", "infer-mlp", "memory"],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_header_reports_the_machine_and_the_matmul_peak(quick_output):
    assert re.search(r"float32 matmul peak .*: \d+\.\d GFLOP/s", quick_output)
    assert re.search(r"Data: (MNIST train set from|RANDOM data of MNIST shape)", quick_output)
    assert "BLAS:" in quick_output


def test_every_requested_case_has_a_row_with_a_library_rate(quick_output):
    rows = [line for line in quick_output.splitlines() if TRAINING_ROW.match(line)]
    assert [row.split("|")[1].strip() for row in rows] == ["mlp16-sgd", "wide128-adam", "cnn64-adam"]
    assert re.search(r"^\| infer-mlp +\| \d+\.\d ", quick_output, re.MULTILINE)
    assert re.search(r"^\| nn +\| \d+\.\d ", quick_output, re.MULTILINE)  # the memory table
    assert "mlp32" not in quick_output  # --cases selects


def test_an_unknown_case_is_rejected_with_the_known_names():
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "speed.py"), "--cases", "mlp7"],
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 2
    assert "unknown case(s) mlp7" in completed.stderr and "mlp16-sgd" in completed.stderr


def test_hostile_files_benchmark_refuses_every_hostile_file_and_loads_the_good_ones():
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "hostile_files.py"), "--quick"], capture_output=True,
                               text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line.split(" | ") for line in completed.stdout.splitlines()[2:]]
    assert len(rows) >= 10 and all(len(row) == 6 for row in rows)
    outcomes = {row[0].lstrip("| "): row[2] for row in rows}
    assert outcomes.pop("baseline: import, load nothing") == "nothing loaded"
    assert all(outcome.startswith("loaded") for name, outcome in outcomes.items() if name.startswith("shipped"))
    assert all(outcome.startswith("refused: ") for name, outcome in outcomes.items() if not name.startswith("shipped"))


def run_quick(script: str, *args: str) -> str:
    completed = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", *args], capture_output=True,
                               text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_augmentation_benchmark_prints_the_overhead_of_each_preset():
    output = run_quick("augmentation.py", "--arch", "digits", "doodles", "--threads", "1")
    assert re.search(r"^\| digits +\| [\d,]+ +\| [\d,]+ +\| [+-]\d+\.\d% +\| <= 25% (ok|MISS)", output, re.MULTILINE)
    assert re.search(r"^\| doodles +\| random_flip_1 \(RandomFlip\) +\| \d+\.\d\d ", output, re.MULTILINE)


def test_split_steps_benchmark_compares_the_ways_and_says_which_cases_split():
    output = run_quick("split_steps.py", "--cases", "cnn", "wide")
    split = r"(?:[\d,]+ \(\d+\.\d\dx\)|-)"  # samples/s and the ratio to one thread, or "-" where not used
    rows = re.findall(rf"^\| (cnn64-adam|wide128-adam) +\| [\d,]+ +\| [\d,]+ +\| [\d,]+ \(\d+\.\d\dx\) +\| {split} "
                      r"+\| \d+% +\| (yes|no) +\|$", output, re.MULTILINE)
    assert [name for name, _ in rows] == ["cnn64-adam", "wide128-adam"]
    assert dict(rows)["wide128-adam"] == "no"  # 64 samples of a 784-512-256-10 MLP: below the threshold


def test_robustness_benchmark_scores_a_model_on_every_perturbation(mnist_dir):
    output = run_quick("robustness.py", "--data", str(mnist_dir))
    rows = re.findall(r"^\| (clean|shift|rotation)[^|]*\| +(\d+\.\d\d)% \|$", output, re.MULTILINE)
    assert [name for name, _ in rows] == ["clean", "shift", "shift", "rotation", "rotation", "rotation"]


def test_own_data_benchmark_prints_its_folder_and_table_rows():
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "own_data.py"), "--quick"], capture_output=True,
                               text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows[1:4]] == [
        "the same drawings, .npy in memory", "PNG folder, decoded into memory",
        "PNG folder, decoded once into the memory-mapped cache"]
    assert re.search(r"^\| breast cancer \| 569 \| classification \| accuracy: 0\.\d+ .*\| accuracy 0?\.?\d",
                     completed.stdout, re.MULTILINE)
    assert re.search(r"^\| diabetes \| 442 \| regression \| R²: -?\d\.\d+ ", completed.stdout, re.MULTILINE)
