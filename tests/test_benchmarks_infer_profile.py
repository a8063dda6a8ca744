"""The one-image inference profile runs end to end and prints a row per layer; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TIMEOUT_SECONDS = 120


def test_the_profile_times_every_layer_and_what_predict_spends_outside_them():
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "infer_profile.py"), "--threads", "1", "--calls", "3",
                                "--models", "cnn"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {name.strip(): float(value) for name, value in
            re.findall(r"^\| (.+?) +\| (-?\d+\.\d) +\|$", completed.stdout, re.MULTILINE)}
    layers = {name: value for name, value in rows.items() if re.fullmatch(r"\w+ \(\w+\)", name)}
    assert [name.split(" ")[1] for name in layers] == ["(Rescaling)", "(Conv2D)", "(MaxPooling2D)", "(Conv2D)",
                                                       "(MaxPooling2D)", "(Flatten)", "(Dropout)", "(Dense)"]
    assert abs(rows["sum of the layers"] - sum(layers.values())) < 1.0  # each shown to 0.1 us
    assert abs(rows["model.predict(one image)"] - rows["sum of the layers"] - rows["outside the layers"]) < 0.2
    assert {"model.predict(one image)", "outside the layers", "model(data=image)"} <= set(rows)


def test_bad_arguments_are_refused():
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "infer_profile.py"), "--calls", "0"],
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert completed.returncode == 2 and "--calls and --threads must be positive integers" in completed.stderr
