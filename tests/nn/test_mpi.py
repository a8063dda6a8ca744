"""Data-parallel training over real MPI processes (``mpiexec -n 2`` on 127.0.0.1): the same weights as one
process with the same global batch, checkpoints that resume with another number of processes, a failing or
killed process ending the job within seconds, and the command line. Skipped without the ``mpi`` extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mpi_worker
import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")

MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
if MPIEXEC is None:
    pytest.skip("no mpiexec found (the mpich wheel installs one)", allow_module_level=True)

WORKER = Path(mpi_worker.__file__)
TOLERANCE = 1e-6
LAUNCH_TIMEOUT_SECONDS = 180
FAILURE_SECONDS = 30  # generous on a loaded machine: the job ends in about a second once a process fails


def mpiexec(processes: int, *command: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    completed = subprocess.run([MPIEXEC, "-hosts", "127.0.0.1", "-n", str(processes), *command],
                               capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_SECONDS, check=False, cwd=cwd,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    return completed, time.perf_counter() - start


def worker(processes: int, mode: str, folder: Path) -> subprocess.CompletedProcess:
    if processes == 1:  # one process: no launcher, no MPI
        mpi_worker.main(mode, folder)
        return subprocess.CompletedProcess([], 0, "", "")
    completed, _ = mpiexec(processes, sys.executable, str(WORKER), mode, str(folder))
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    return completed


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, np.ndarray]:
    """The parameters one process reaches: 2 epochs of 10 steps of batch 7, per network."""
    folder = tmp_path_factory.mktemp("single")
    worker(1, "train", folder)
    return {name: np.load(folder / f"{name}-train.npy") for name in mpi_worker.NETWORKS}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("two")
    return folder, worker(2, "train", folder).stdout


@pytest.mark.parametrize("name", list(mpi_worker.NETWORKS))
def test_two_processes_reach_the_weights_of_one_with_the_same_global_batch(single, two_processes, name):
    folder, _ = two_processes
    np.testing.assert_allclose(np.load(folder / f"{name}-train.npy"), single[name], atol=TOLERANCE, rtol=0)


def test_every_process_ends_with_the_same_weights(two_processes):
    _, stdout = two_processes
    for name in mpi_worker.NETWORKS:
        assert all(f"{name}: process {rank} has rank 0's weights: True" in stdout for rank in (0, 1))


def test_one_log_and_files_from_rank_0_only(two_processes):
    folder, stdout = two_processes
    assert stdout.count("Epoch 2/2") == len(mpi_worker.NETWORKS)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        f"{name}-{kind}" for name in mpi_worker.NETWORKS for kind in ("checkpoint.npz", "train.npy"))


@pytest.mark.parametrize("written_by, resumed_by", [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_with_another_number_of_processes(tmp_path, single, written_by, resumed_by):
    worker(written_by, "train", tmp_path)
    worker(resumed_by, "resume", tmp_path)
    for name in mpi_worker.NETWORKS:
        np.testing.assert_allclose(np.load(tmp_path / f"{name}-resume.npy"), single[name], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("how, expected", [
    ("fail", "error: process 1 of 2: cat.npy: the disk went away; stopping all 2 processes"),
    ("kill", "signal 9"),  # the launcher's report (MPICH: "Killed (signal 9)", Open MPI: "on signal 9")
])
def test_a_failing_or_killed_process_ends_the_job_within_seconds(tmp_path, how, expected):
    completed, seconds = mpiexec(2, sys.executable, str(WORKER), how, str(tmp_path))
    assert completed.returncode != 0
    assert expected in completed.stdout + completed.stderr
    assert seconds < FAILURE_SECONDS
    assert not list(tmp_path.iterdir())  # nothing was written


def doodles(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for label, name in enumerate(("cat", "dog", "fish")):
        rows = rng.integers(0, 64, (120, 784), dtype=np.uint8)
        rows[:, 200 * label:200 * label + 200] = 255
        np.save(folder / f"{name}.npy", rows)
    return folder


def test_the_command_line_trains_over_two_processes(tmp_path):
    folder = doodles(tmp_path / "doodles")
    command = [sys.executable, "-m", "NeuralNetworks", "train", "--dataset", "quickdraw", "--data-dir", str(folder),
               "--classes", "all", "--stream", "--epochs", "2", "--batch", "16", "--quiet", "--out", "m.npz",
               "--checkpoint", "checkpoint.npz"]
    completed, _ = mpiexec(2, *command, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert out.count("Epoch 2/2") == 1 and out.count("saved model to m.npz") == 1
    assert out.count("quickdraw: 258 training and 72 test images (streamed from disk), 3 classes") == 1
    assert float(out.split("test accuracy: ")[1].split()[0]) > 0.9
    assert {"m.npz", "checkpoint.npz", "m-history.png"} <= {path.name for path in tmp_path.iterdir()}


def test_a_process_of_the_command_line_that_cannot_read_its_data_ends_the_job(tmp_path):
    folder = doodles(tmp_path / "doodles")
    train = [sys.executable, "-m", "NeuralNetworks", "train", "--dataset", "quickdraw", "--epochs", "1", "--quiet"]
    completed, seconds = mpiexec(1, *train, "--data-dir", str(folder), ":", "-n", "1", *train, "--data-dir",
                                 str(tmp_path / "absent"), cwd=tmp_path)
    assert completed.returncode == 2 and seconds < FAILURE_SECONDS
    assert "error: process 1: " in completed.stderr and "absent: QuickDraw folder not found" in completed.stderr
