"""Data-parallel training (nn.parallel) on an engine of threads: N "processes" with a global batch B train
exactly as one process with batch B; what is shared, what is kept to rank 0, failures; launch detection.
The same trainer over MPI processes is tested in test_mpi.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from mpi_worker import cnn, mlp, residual
from thread_engine import Aborted, run_in_threads

from NeuralNetworks.nn import callbacks, layers, models, parallel
from NeuralNetworks.nn.parallel import DataParallelTrainer, environment

STEPS = 20
TOLERANCE = 1e-6


def samples(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)), rng.integers(0, 3, n)


def in_threads(size: int, work) -> list:
    results = run_in_threads(size, work)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@pytest.mark.parametrize("make, shape", [(mlp, (6,)), (cnn, (8, 8, 1)), (residual, (8, 8, 1))])
@pytest.mark.parametrize("batch_size", [7, 8])
@pytest.mark.parametrize("size", [2, 3])
def test_n_processes_train_as_one_with_the_same_global_batch(make, shape, batch_size, size):
    x, y = samples(shape, batch_size * STEPS // 2)  # 2 epochs of 10 steps, shuffled differently
    x_val, y_val = samples(shape, 30, seed=1)
    single = make()
    expected = single.fit(x, y, epochs=2, batch_size=batch_size, validation_data=(x_val, y_val), verbose=0)

    def work(engine):
        model = make()
        history = DataParallelTrainer(model, engine).fit(x, y, epochs=2, batch_size=batch_size,
                                                          validation_data=(x_val, y_val), verbose=0)
        return model, history.history

    results = in_threads(size, work)
    for model, history in results:
        np.testing.assert_allclose(model.flat.params, single.flat.params, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(model.flat.state, single.flat.state, atol=TOLERANCE, rtol=0)  # moving stats
        for key, values in expected.history.items():
            np.testing.assert_allclose(history[key], values, atol=TOLERANCE, rtol=0)
        assert model.optimizer.iterations == single.optimizer.iterations == STEPS
        assert model.rng.bit_generator.state == single.rng.bit_generator.state  # the same shuffles drawn
        np.testing.assert_array_equal(model.flat.params, results[0][0].flat.params)  # processes identical
        assert all(layer.replica_sum is None for layer in model.layers)  # one-process layers again


def test_rank_0_weights_and_random_state_are_everyones_at_the_start():
    x, y = samples((6,), 40)

    def work(engine):
        model = mlp()
        model.set_weights([w + engine.rank for w in model.get_weights()])  # every process's weights differ
        model.rng.bit_generator.state = np.random.default_rng(engine.rank).bit_generator.state  # shuffles apart
        DataParallelTrainer(model, engine).fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0)
        return model.flat.params

    single = mlp()
    single.rng.bit_generator.state = np.random.default_rng(0).bit_generator.state
    single.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0)
    for params in in_threads(2, work):
        np.testing.assert_allclose(params, single.flat.params, atol=TOLERANCE, rtol=0)


def test_display_and_checkpoints_run_on_rank_0_only(tmp_path, capsys):
    x, y = samples((6,), 40)
    calls: dict[int, list[str]] = {0: [], 1: []}

    class Record(callbacks.Callback):
        def __init__(self, rank):
            self.rank = rank

        def on_epoch_end(self, epoch, logs=None):
            calls[self.rank].append(f"epoch {epoch}: {logs['loss']:.12f}")

    def work(engine):
        checkpoint = callbacks.ModelCheckpoint(tmp_path / f"rank{engine.rank}.npz")
        DataParallelTrainer(mlp(), engine).fit(x, y, epochs=2, batch_size=8, verbose=2,
                                               callbacks=[Record(engine.rank), checkpoint])

    in_threads(2, work)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rank0.npz"]
    assert capsys.readouterr().out.count("Epoch 1/2") == 1  # one log
    assert calls[0] == calls[1] and len(calls[0]) == 2  # every process sees the same, summed, epoch logs


def test_progress_bar_logs_are_summed_over_processes_after_every_batch(capsys):
    x, y = samples((6,), 48)
    seen: dict[int, list[float]] = {0: [], 1: []}

    class Running(callbacks.Callback):
        def __init__(self, rank):
            self.rank = rank

        def on_batch_end(self, batch, logs=None):
            seen[self.rank].append(logs["loss"])

    in_threads(2, lambda engine: DataParallelTrainer(mlp(), engine).fit(
        x, y, epochs=1, batch_size=8, verbose=1, callbacks=[Running(engine.rank)]))
    assert len(seen[0]) == 6 and seen[0] == seen[1]
    assert capsys.readouterr().err.count("Epoch 1/1") >= 1


def test_a_last_batch_smaller_than_the_number_of_processes_is_left_out():
    x, y = samples((6,), 17)  # batches of 8, 8 and 1: the 1 cannot be split over 2 processes

    def work(engine):
        model = mlp()
        history = DataParallelTrainer(model, engine).fit(x, y, epochs=1, batch_size=8, verbose=0)
        return model.optimizer.iterations, history

    assert [steps for steps, _ in in_threads(2, work)] == [2, 2]
    results = run_in_threads(2, lambda engine: DataParallelTrainer(mlp(), engine).fit(x, y, batch_size=1, verbose=0))
    assert all(isinstance(result, Aborted) for result in results)
    assert any("batch_size=1 cannot be split over 2 processes" in str(result) for result in results)


def test_dropout_masks_differ_between_processes_but_the_shared_stream_does_not():
    x, y = samples((6,), 32)

    def work(engine):
        model = models.Sequential(seed=0, dtype="float64")
        model.add(layers.Dense(64, activation="relu", input_shape=(6,)))
        model.add(layers.Dropout(0.5))
        model.add(layers.Dense(3, activation="softmax"))
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        masks = []

        class Watch(callbacks.Callback):
            def on_batch_end(self, batch, logs=None):
                masks.append(model.layers[1]._mask.copy())

        DataParallelTrainer(model, engine).fit(x, y, epochs=2, batch_size=16, callbacks=[Watch()], verbose=0)
        return masks, model.rng.bit_generator.state, model.flat.params

    (masks_0, state_0, params_0), (masks_1, state_1, params_1) = in_threads(2, work)
    assert not np.array_equal(masks_0[0], masks_1[0])
    assert state_0 == state_1
    np.testing.assert_array_equal(params_0, params_1)


def test_a_failure_on_one_process_ends_every_process():
    x, y = samples((6,), 40)

    class FailOnRank1(callbacks.Callback):
        def __init__(self, rank):
            self.rank = rank

        def on_epoch_end(self, epoch, logs=None):
            if self.rank == 1:
                raise OSError("the disk went away")

    results = run_in_threads(2, lambda engine: DataParallelTrainer(mlp(), engine).fit(
        x, y, epochs=3, batch_size=8, callbacks=[FailOnRank1(engine.rank)], verbose=0))
    assert all(isinstance(result, Aborted) for result in results)
    assert results[1].status == 2
    assert str(results[1]) == ("error: process 1 of 2: the disk went away; stopping all 2 processes")


def test_processes_with_different_models_are_refused():
    x, y = samples((6,), 40)
    results = run_in_threads(2, lambda engine: DataParallelTrainer(mlp() if engine.rank == 0 else cnn(), engine)
                             .fit(x if engine.rank == 0 else np.zeros((40, 8, 8, 1)), y, verbose=0))
    assert "every process must build the same model" in str(results[1])


def test_evaluation_is_shared_out_and_summed():
    x, y = samples((6,), 31)
    model = mlp()
    expected = model.evaluate(x, y, return_dict=True)

    def work(engine):
        return DataParallelTrainer(mlp(), engine).evaluate(x, y)

    for logs in in_threads(3, work):
        assert logs == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("environ, size, rank, choice", [
    ({}, 1, 0, "none"),
    ({"PMI_SIZE": "4", "PMI_RANK": "2"}, 4, 2, "mpi"),
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}, 2, 1, "mpi"),
    ({"PMIX_RANK": "3", "SLURM_STEP_NUM_TASKS": "8"}, 8, 3, "mpi"),
    ({"PMI_SIZE": "1", "PMI_RANK": "0"}, 1, 0, "none"),
    ({"PMI_SIZE": "4", "NEURALNETWORKS_ENGINE": "none"}, 4, 0, "none"),
    ({"NEURALNETWORKS_ENGINE": "MPI"}, 1, 0, "mpi"),
])
def test_a_launch_is_recognised_from_the_environment(environ, size, rank, choice):
    assert environment.launched_size(environ) == size
    assert environment.launched_rank(environ) == rank
    assert environment.engine_choice(environ) == choice
    assert environment.is_root_process(environ) == (rank == 0 or choice == "none")


def test_each_process_uses_its_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(environment.os, "cpu_count", lambda: 8)
    assert environment.cores_per_process({"MPI_LOCALNRANKS": "4"}) == 2
    assert environment.cores_per_process({"OMPI_COMM_WORLD_LOCAL_SIZE": "16"}) == 1
    assert environment.cores_per_process({}) == 8


def test_a_bad_engine_choice_is_refused():
    with pytest.raises(ValueError, match="NEURALNETWORKS_ENGINE must be one of auto, mpi, none. Received: 'ray'"):
        environment.engine_choice({"NEURALNETWORKS_ENGINE": "ray"})


def test_a_launch_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    with pytest.raises(RuntimeError, match=r'one of 2 started by an MPI launcher.*neural-networks\[mpi\]'):
        parallel.engine_from_environment()


def test_a_plain_run_never_imports_mpi4py():
    script = ("import sys, numpy as np\n"
              "from NeuralNetworks import cli\n"
              "from NeuralNetworks.nn import presets\n"
              "model = presets.default_mlp((28, 28, 1), 2, seed=0)\n"
              "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
              "model.fit(np.zeros((8, 28, 28, 1), np.uint8), np.arange(8) % 2, verbose=0)\n"
              "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'\n")
    environ = {key: value for key, value in __import__("os").environ.items()
               if key not in (*environment.SIZE_VARIABLES, "PMIX_RANK", environment.ENGINE_VARIABLE)}
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environ,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
