"""What a data-parallel job's shape can do (real ``mpiexec`` from the mpich wheel, on 127.0.0.1): more processes
than training samples, processes that loaded different data, and an unknown engine choice are refused with one
named line and exit status 2, before any step, instead of an untrained model saved with exit 0 or MPI's own
"Message truncated" abort. Ranks orphaned by a killed launcher helper write nothing, and Ctrl-C under mpiexec
keeps the best weights as it does for one process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from NeuralNetworks.cli import main
from NeuralNetworks.nn.parallel import ENGINE_VARIABLE

LAUNCH_TIMEOUT_SECONDS = 180
FIT = """
import os, sys
import numpy as np
from NeuralNetworks.nn import layers, models
rank = int(os.environ.get("PMI_RANK", "0"))
n = int(sys.argv[1]) + rank * int(sys.argv[2])  # rank r loads n + r * extra samples
model = models.Sequential(seed=0)
model.add(layers.Dense(3, activation="softmax", input_shape=(4,)))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(np.ones((n, 4)), np.arange(n) % 3, epochs=1, batch_size=max(n, 4), verbose=0)
print("trained", flush=True)
"""


def mpiexec(processes: int, *arguments: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")
    launcher = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if launcher is None:
        pytest.skip("no mpiexec found (the mpich wheel installs one)")
    return subprocess.run([launcher, "-hosts", "127.0.0.1", "-n", str(processes), sys.executable, "-c", FIT,
                           *arguments], capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_SECONDS, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


def test_more_processes_than_training_samples_is_refused_up_front():
    completed = mpiexec(3, "2", "0")
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0 and "trained" not in output
    assert "2 training samples cannot be split over 3 processes" in output and "at least 3 training" in output
    assert "Traceback" not in output


def test_processes_that_loaded_different_data_are_refused_by_name():
    completed = mpiexec(2, "8", "1")  # rank 0: 8 samples, rank 1: 9
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0 and "trained" not in output
    assert "this process loaded 9 training and 0 validation samples" in output
    assert "rank 0 has 8 training" in output and "Message truncated" not in output


def test_as_many_samples_as_processes_still_trains():
    completed = mpiexec(2, "2", "0")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.count("trained") == 2


@pytest.mark.parametrize("value", ["bogus", "MPI;rm -rf", "\u00e9"])
def test_an_unknown_engine_choice_fails_only_where_an_engine_is_needed(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv(ENGINE_VARIABLE, value)
    model = tmp_path / "m.npz"
    from NeuralNetworks.nn import layers, models

    network = models.Sequential(seed=0)
    network.add(layers.Dense(3, activation="softmax", input_shape=(4,)))
    network.save(model)
    assert main(["info", str(model)]) == 0  # no engine needed: no complaint
    capsys.readouterr()
    assert main(["train", "--dataset", "shapes", "--epochs", "1", "--max-per-class", "20",
                 "--out", str(tmp_path / "t.npz")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"{ENGINE_VARIABLE} must be one of auto, mpi, none" in error
    assert not (tmp_path / "t.npz").exists()


def launcher() -> str:
    pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if found is None:
        pytest.skip("no mpiexec found (the mpich wheel installs one)")
    return found


KILL_HELPER = """
import os, signal, sys, time
import numpy as np
from NeuralNetworks.nn import callbacks, layers, models
rank = os.environ.get("PMI_RANK", "0")
model = models.Sequential(seed=0)
model.add(layers.Dense(3, activation="softmax", input_shape=(4,)))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

class KillHelper(callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0 and rank == "1":
            os.kill(os.getppid(), signal.SIGKILL)  # the launcher's helper (hydra_pmi_proxy) dies
        time.sleep(0.5)

model.fit(np.ones((32, 4)), np.arange(32) % 3, epochs=4, batch_size=8, verbose=0, callbacks=[KillHelper()])
if rank == "0":
    model.save(sys.argv[1])
"""


def test_ranks_whose_launcher_helper_was_killed_write_nothing(tmp_path):
    out = tmp_path / "out.npz"
    completed = subprocess.run([launcher(), "-hosts", "127.0.0.1", "-n", "2", sys.executable, "-c", KILL_HELPER,
                                str(out)], capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_SECONDS,
                               check=False, env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert completed.returncode != 0
    time.sleep(2)  # the ranks, orphaned, must have stopped rather than gone on to save
    assert not out.exists()


def test_ctrl_c_under_mpiexec_saves_the_best_weights_on_rank_0(tmp_path):
    command = [launcher(), "-hosts", "127.0.0.1", "-n", "2", sys.executable, "-m", "NeuralNetworks", "train",
               "--dataset", "shapes", "--max-per-class", "200", "--epochs", "500", "--batch", "16", "--quiet",
               "--out", str(tmp_path / "m.npz")]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    try:
        for line in job.stdout:  # wait until training runs
            if line.startswith("Epoch 2/"):
                break
        job.send_signal(signal.SIGINT)  # mpiexec forwards it to every process, as a terminal's Ctrl-C does
        _, err = job.communicate(timeout=LAUNCH_TIMEOUT_SECONDS)
    finally:
        if job.poll() is None:
            job.kill()
    assert "interrupted: saved the best weights so far to" in err, err[-2000:]
    assert err.count("interrupted: saved") == 1  # rank 0 only
    from NeuralNetworks.nn import models

    assert models.load(tmp_path / "m.npz").count_params() > 0
