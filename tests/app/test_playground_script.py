"""The script of "Copy as Python" runs on its own and prints the session's last training loss."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
FLOAT32_TOLERANCE = 1e-5  # relative: the script and the session run the same float32 arithmetic
SCRIPT_TIMEOUT_SECONDS = 120
FINAL_LOSS = re.compile(r"final loss: (\S+)")


def run_script(text: str, folder: Path) -> str:
    path = folder / "playground_run.py"
    path.write_text(text, encoding="utf-8")
    completed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=folder,
                               timeout=SCRIPT_TIMEOUT_SECONDS, check=False,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.mark.parametrize(("settings", "requests"), [
    ({"dataset": "spirals"}, [137, 0, 63]),  # the defaults, steps spread over requests
    ({"dataset": "regression", "hidden": [8, 8, 8], "activation": "relu", "optimizer": "sgd",
      "learning_rate": 0.01, "batch_size": 7, "noise": 0.2, "train_fraction": 0.3, "seed": 11}, [90]),
    ({"dataset": "circles", "hidden": [], "activation": "linear", "optimizer": "momentum", "learning_rate": 0.3,
      "batch_size": 100, "seed": 4_000_000_000}, [40, 40]),
    ({"dataset": "xor", "activation": "sigmoid", "batch_size": 1}, [0]),
])
def test_the_script_reproduces_the_session(client, tmp_path, settings, requests):
    session = client.post("/api/playground", json=settings).json()["session"]
    for steps in requests:
        view = client.post(f"/api/playground/{session}/step", json={"steps": steps}).json()
    assert view["step"] == sum(requests)
    output = run_script(client.get(f"/api/playground/{session}/code").text, tmp_path)
    lines = output.strip().splitlines()
    found = FINAL_LOSS.fullmatch(lines[-1])
    assert found, lines[-1]
    assert float(found.group(1)) == pytest.approx(view["loss"], rel=FLOAT32_TOLERANCE)
    test_loss = float(re.search(r"test loss: (\S+)", output).group(1))
    assert test_loss == pytest.approx(view["test_loss"], rel=FLOAT32_TOLERANCE)


def test_the_script_of_another_session_prints_another_loss(client, tmp_path):
    """The comparison above can fail: a script with other settings does not print the session's loss."""
    session = client.post("/api/playground", json={"dataset": "spirals"}).json()["session"]
    view = client.post(f"/api/playground/{session}/step", json={"steps": 50}).json()
    text = client.get(f"/api/playground/{session}/code").text.replace("STEPS = 50", "STEPS = 49")
    printed = float(FINAL_LOSS.fullmatch(run_script(text, tmp_path).strip().splitlines()[-1]).group(1))
    assert printed != pytest.approx(view["loss"], rel=FLOAT32_TOLERANCE)
