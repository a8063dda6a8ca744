"""Each walkthrough in ``examples/`` runs in its ``--fast`` mode and prints the result it exists to show."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT_SECONDS = 120  # a hang guard only; the fast runs take a second or two each


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>.py --fast``; fail with its output unless it exits 0; return its stdout."""
    completed = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--fast", *args],
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 0, f"{name}.py exited {completed.returncode}:\n{completed.stdout}\n" \
                                      f"{completed.stderr}"
    return completed.stdout


def number_after(label: str, output: str) -> float:
    match = re.search(rf"^{re.escape(label)}:\s*([-+0-9.eE]+)", output, flags=re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{output}"
    return float(match.group(1))


def test_xor_reaches_an_error_below_one_thousandth():
    output = run_example("xor")
    assert number_after("error", output) < 1e-3
    assert output.count("-> prediction") == 4


def test_regression_fits_the_cubic(tmp_path):
    plot = tmp_path / "regression.png"
    output = run_example("regression", "--plot", str(plot))
    assert number_after("test R^2", output) > 0.99  # ten epochs on 500 points already explain 99% of variance
    assert plot.stat().st_size > 0


def test_spirals_are_separated(tmp_path):
    plot = tmp_path / "spirals.png"
    output = run_example("spirals", "--plot", str(plot))
    assert number_after("test accuracy", output) > 0.9
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_idx_trains_saves_reloads_and_tests(mnist_dir, tmp_path):
    model_file = tmp_path / "mnist.npz"
    output = run_example("mnist_idx", "--data-dir", str(mnist_dir), "--save", str(model_file))
    assert number_after("test accuracy", output) > 0.6  # 2,000 images, 3 epochs
    assert "reloaded" in output
    assert model_file.is_file()


def test_mnist_idx_fast_skips_cleanly_without_data(tmp_path):
    output = run_example("mnist_idx", "--data-dir", str(tmp_path / "absent"))
    assert output.startswith("skipped:")


def test_mnist_idx_full_run_without_data_is_an_error(tmp_path):
    completed = subprocess.run([sys.executable, str(EXAMPLES / "mnist_idx.py"), "--data-dir",
                                str(tmp_path / "absent")], capture_output=True, text=True,
                               timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error:") and "absent" in completed.stderr


def test_doodles_canonical_sequence(quickdraw_dir):
    output = run_example("doodles", "--data-dir", str(quickdraw_dir))
    assert number_after("test accuracy", output) > 0.5  # three classes: chance is a third
    assert re.search(r"^prediction: (bicycle|cat|flower) \(true (bicycle|cat|flower)\)", output, re.MULTILINE)


@pytest.mark.parametrize("name", ["mnist_idx", "doodles"])
def test_data_examples_name_a_missing_class_file(name, tmp_path):
    completed = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--data-dir", str(tmp_path)],
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error:") and str(tmp_path) in completed.stderr
