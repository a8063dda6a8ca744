"""Augmentation layers: every factor bounded where it is accepted (the constructor, which a model file's config
goes through too), and a seeded layer's random state saved with the model (a resumed run draws what the
uninterrupted one drew) and split per process in a data-parallel job (each rank its own transforms)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_files import contents, layer_config, write_model
from hypothesis import given, settings
from hypothesis import strategies as st

from NeuralNetworks.cli import main
from NeuralNetworks.nn import layers, models
from NeuralNetworks.nn.saving import ModelFileError

BOUNDED = settings(max_examples=150, deadline=None, derandomize=True, database=None)
FACTORS = st.floats(allow_nan=True, allow_infinity=True) | st.tuples(st.floats(), st.floats())


def augmented(seed: int | None = 3, factor: float = 0.2) -> models.Sequential:
    model = models.Sequential(seed=0, dtype="float64")
    model.add(layers.RandomRotation(factor, seed=seed, input_shape=(8, 8, 1)))
    model.add(layers.RandomZoom(0.1, seed=None if seed is None else seed + 1))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(40, 8, 8, 1)), rng.integers(0, 3, 40)


@BOUNDED
@given(factor=FACTORS, kind=st.sampled_from(["rotation", "translation", "zoom"]))
def test_a_factor_is_refused_by_name_or_every_transform_is_finite(factor, kind):
    make = {"rotation": lambda f: layers.RandomRotation(f, seed=0),
            "translation": lambda f: layers.RandomTranslation(f, f, seed=0),
            "zoom": lambda f: layers.RandomZoom(f, seed=0)}[kind]
    try:
        layer = make(factor)
    except ValueError as error:
        assert "factor" in str(error)
        return
    layer.build((8, 8, 1), np.random.default_rng(0), np.float32)
    out = layer.forward(np.ones((4, 8, 8, 1), np.float32), training=True)
    assert np.isfinite(out).all()


def test_absurd_factors_are_refused_at_construction():
    for make in (lambda: layers.RandomRotation(1e308), lambda: layers.RandomRotation((0.0, 1.5)),
                 lambda: layers.RandomTranslation(2.0, 0.1), lambda: layers.RandomZoom(1e9)):
        with pytest.raises(ValueError, match="factor.* within"):
            make()


@pytest.mark.parametrize("key, value, pattern", [
    ("factor", [-1e308, 1e308], r"RandomRotation expects `factor` within \[-1.0, 1.0\]"),
    ("random_state", {"bit_generator": "MT19937", "state": {}}, "PCG64 generator state"),
    ("random_state", {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0,
                      "uinteger": 0}, "PCG64 generator state"),
])
def test_a_model_file_with_an_absurd_augmentation_is_refused_at_load_in_one_line(tmp_path, capsys, key, value,
                                                                                    pattern):
    config, arrays = contents(augmented().save(tmp_path / "good.npz"))
    layer_config(config, "RandomRotation")[key] = value
    path = write_model(tmp_path / "bad.npz", config, arrays)
    with pytest.raises(ModelFileError, match=pattern):
        models.load(path)
    assert main(["info", str(path)]) == 2  # the app's start-up loads through the same path
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.npz" in error


def test_a_resumed_run_draws_what_the_uninterrupted_run_drew(tmp_path):
    x, y = samples()
    whole = augmented()
    whole.fit(x, y, epochs=3, batch_size=8, verbose=0)
    first = augmented()
    first.fit(x, y, epochs=1, batch_size=8, verbose=0)
    resumed = models.load(first.save(tmp_path / "epoch1.npz"))
    assert resumed.layers[0].get_config()["random_state"] == first.layers[0].get_config()["random_state"]
    resumed.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(resumed.flat.params, whole.flat.params)


def test_only_a_seeded_layer_has_a_random_state_of_its_own():
    model = augmented(seed=None)
    assert "random_state" not in model.layers[0].get_config()  # it draws from the model's, saved with the model
    with pytest.raises(ValueError, match="`random_state` only with a `seed`"):
        layers.RandomRotation(0.1, random_state=augmented().layers[0].get_config()["random_state"])


PER_RANK = """
import os
import numpy as np
from NeuralNetworks.nn import callbacks, layers, models
rank = os.environ.get("PMI_RANK", "0")
model = models.Sequential(seed=0)
model.add(layers.RandomRotation(0.3, seed=5, input_shape=(8, 8, 1)))
model.add(layers.Flatten())
model.add(layers.Dense(3, activation="softmax"))
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
seen = []

class Record(callbacks.Callback):
    def on_batch_end(self, batch, logs=None):
        seen.append(model.layers[0].own_generator().bit_generator.state["state"]["state"])

x = np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype(np.float32)
model.fit(x, np.arange(32) % 3, epochs=2, batch_size=16, verbose=0, callbacks=[Record()])
state = model.layers[0].get_config()["random_state"]["state"]["state"]
print(f"rank {rank}: during {seen[0]} after {state}", flush=True)
"""


def test_each_process_draws_its_own_transforms_and_all_end_on_the_shared_stream():
    pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")
    launcher = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if launcher is None:
        pytest.skip("no mpiexec found (the mpich wheel installs one)")
    completed = subprocess.run([launcher, "-hosts", "127.0.0.1", "-n", "2", sys.executable, "-c", PER_RANK],
                               capture_output=True, text=True, timeout=180, check=False,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    found = sorted(re.findall(r"rank (\d): during (\d+) after (\d+)", completed.stdout))  # lines may interleave
    assert [rank for rank, _, _ in found] == ["0", "1"], completed.stdout
    (_, during0, after0), (_, during1, after1) = found
    assert during0 != during1  # the processes draw from different streams: different rotations
    assert after0 == after1  # and the same shared stream afterwards (what a checkpoint saves)
