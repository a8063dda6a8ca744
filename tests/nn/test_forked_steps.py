"""Training steps split over forked worker processes (nn.forked_steps): the same floats as threads, errors that
end the step instead of hanging it, workers kept between fits and let go, and when ``fit`` forks."""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from split_models import CLASSES, INPUT_SHAPE, batch, forked, needs_fork, small_cnn, two_cores

from NeuralNetworks.nn import callbacks, forked_steps, layers, losses, models, optimizers, split_steps, threaded_steps
from NeuralNetworks.nn._threads import blas_controller

pytestmark = [pytest.mark.skipif(blas_controller() is None, reason="threadpoolctl is not installed"), needs_fork]


def forking_fits(monkeypatch) -> None:
    """As on a machine of two cores where ``fit`` may fork, for a fit of any length."""
    two_cores(monkeypatch)
    monkeypatch.setattr(split_steps, "forking_allowed", lambda: True)
    monkeypatch.setattr(split_steps, "MIN_FORKED_STEPS", 0)


def children_since(before: set) -> list:
    """This process's live children that were not in ``before``: workers of a model an earlier test left to
    the garbage collector (a model and its History refer to each other) may still be alive."""
    return [child for child in multiprocessing.active_children() if child not in before]


class FailsOnMarker(layers.Layer):
    """Passes its input through, but raises in the process named by ``where`` when a batch holds a NaN."""

    def __init__(self, where: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.where, self.main = where, os.getpid()

    def forward(self, x, training=False):
        in_main = os.getpid() == self.main
        if np.isnan(x).any() and in_main == (self.where == "main"):
            raise ValueError(f"marked batch in the {self.where} process")
        return np.nan_to_num(x)

    def backward(self, grad_output, input_gradient=True):
        return grad_output


def failing_cnn(where: str) -> models.Sequential:
    model = models.Sequential(seed=1)
    model.add(FailsOnMarker(where, input_shape=INPUT_SHAPE))
    for layer in small_cnn().layers:
        model.add(type(layer).from_config(layer.get_config()))
    model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    return model


@needs_fork
def test_processes_compute_what_threads_compute_bit_for_bit():
    """Same streams (Dropout seeded or not), same sums in the same order: the same floats, not only close."""
    x, y = batch()
    threaded, forked_model = small_cnn(dropout=0.5), small_cnn(dropout=0.5)
    with threaded_steps.ThreadedSteps(threaded, 3, blas_controller()) as steps:
        results = [steps.compute_gradients(x, y) for _ in range(2)]
    with forked(forked_model, 3, blas_controller()) as steps:
        forked_results = [steps.compute_gradients(x, y) for _ in range(2)]
        workers = list(steps.workers.processes)
    for (loss, y_pred), (forked_loss, forked_pred) in zip(results, forked_results, strict=True):
        assert loss == forked_loss
        np.testing.assert_array_equal(y_pred, forked_pred)
    np.testing.assert_array_equal(threaded.flat.grads, forked_model.flat.grads)
    np.testing.assert_array_equal(threaded.flat.state, forked_model.flat.state)
    assert [worker.exitcode for worker in workers] == [0, 0]  # each left when its pipe closed, none was killed


@needs_fork
@pytest.mark.parametrize("where", ["main", "worker"])
def test_an_error_in_either_process_ends_the_step_and_the_next_one_works(where):
    x, y = batch(12)
    marked = x.copy()
    marked[:, 0, 0, 0] = np.nan  # every part holds a marked sample
    model = failing_cnn(where)
    with forked(model, 3, blas_controller()) as steps:
        with pytest.raises(ValueError, match=f"marked batch in the {where} process"):
            steps.compute_gradients(marked, y)
        loss, _ = steps.compute_gradients(x, y)  # every worker waits for its next part again
    assert np.isfinite(loss)
    assert all("replica_sum" not in vars(layer) for layer in model.layers)


@needs_fork
def test_a_worker_killed_ends_fit_with_a_named_error_and_no_process_left(monkeypatch):
    forking_fits(monkeypatch)
    x, y = batch(64)
    before = set(multiprocessing.active_children())

    class KillWorker(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                for child in children_since(before):
                    os.kill(child.pid, signal.SIGKILL)

    model = small_cnn()
    with pytest.raises(forked_steps.PartProcessError, match="training process 1 stopped"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[KillWorker()])
    assert children_since(before) == []
    assert model.step_workers is None
    assert all("replica_sum" not in vars(layer) for layer in model.layers)


@needs_fork
def test_fit_forks_and_trains_as_one_process(monkeypatch):
    x, y = batch(64, seed=3)
    alone = small_cnn()
    alone_history = alone.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    forking_fits(monkeypatch)
    used = []
    original = forked_steps.ForkedSteps.compute_gradients
    before = set(multiprocessing.active_children())

    def counted(self, *args, **kwargs):
        used.append(len(children_since(before)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(forked_steps.ForkedSteps, "compute_gradients", counted)
    split = small_cnn()
    history = split.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert used == [1] * 8  # one worker beside this process, the same for both epochs
    np.testing.assert_allclose(split.flat.params, alone.flat.params, atol=1e-4)
    np.testing.assert_allclose(history.history["loss"], alone_history.history["loss"], rtol=1e-4)
    assert children_since(before) == split.step_workers.processes  # kept for the next fit


def processes_ended(processes: list) -> bool:
    """True once every process has exited by itself (exit code 0: told to, not killed)."""
    for process in processes:
        process.join(forked_steps.STOP_SECONDS)
    return [process.exitcode for process in processes] == [0] * len(processes)


def let_go(model: models.Model) -> list:
    """Drop ``model``'s kept workers as a user would; their processes, to watch them exit."""
    processes = list(model.step_workers.processes)
    model.step_workers = None
    return processes


def test_when_fit_forks_and_keeps_its_workers(monkeypatch):
    """Processes for a long fit, or for a model fitted again; then kept, even once another thread runs (no
    fork needed); threads for a first short fit, or when another thread runs before any fork."""
    two_cores(monkeypatch)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    short = split_steps.MIN_FORKED_STEPS - 1
    model = small_cnn()
    with split_steps.split_steps(model, 16, short) as steps:
        assert isinstance(steps, threaded_steps.ThreadedSteps)  # a first short fit: not worth a fork
    with split_steps.split_steps(model, 16, short) as steps:
        assert isinstance(steps, forked_steps.ForkedSteps)  # fitted again: forks once for this fit and the next
        workers = steps.workers
    assert model.step_workers is workers and model.step_replicas is None
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # a server's thread, say
    with split_steps.split_steps(model, 16, 1) as steps:
        assert steps.workers is workers
    del steps, workers
    assert processes_ended(let_go(model))
    with split_steps.split_steps(small_cnn(), 16, split_steps.MIN_FORKED_STEPS) as steps:
        assert isinstance(steps, threaded_steps.ThreadedSteps)  # no fork beside another thread
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    long = small_cnn()
    with split_steps.split_steps(long, 16, split_steps.MIN_FORKED_STEPS) as steps:
        assert isinstance(steps, forked_steps.ForkedSteps)
    del steps
    assert processes_ended(let_go(long))


def test_kept_workers_train_the_next_fit_as_threads_do_on_new_streams(monkeypatch):
    """Fit twice with Dropout: the second fit's workers restart on new streams drawn from the model as the
    threads' replicas do, so both end with the same floats; on the first fit's streams they would not."""
    forking_fits(monkeypatch)
    x, y = batch(64, seed=4)
    threaded, forked_model = small_cnn(dropout=0.5), small_cnn(dropout=0.5)
    monkeypatch.setattr(split_steps, "forking_allowed", lambda: False)
    for _ in range(2):
        threaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    monkeypatch.setattr(split_steps, "forking_allowed", lambda: True)
    forked_model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    workers = forked_model.step_workers
    forked_model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert forked_model.step_workers is workers
    np.testing.assert_array_equal(forked_model.flat.params, threaded.flat.params)
    del workers
    assert processes_ended(let_go(forked_model))


@pytest.mark.parametrize("change", ["trainable", "hyperparameter", "loss"])
def test_workers_are_forked_again_when_the_model_changed(monkeypatch, change):
    forking_fits(monkeypatch)
    x, y = batch(32)
    model = small_cnn(dropout=0.5)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first = list(model.step_workers.processes)
    if change == "trainable":
        model.layers[0].trainable = False
    elif change == "hyperparameter":
        next(layer for layer in model.layers if isinstance(layer, layers.Dropout)).rate = 0.25
    else:
        model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert processes_ended(first)
    assert model.step_workers.processes != first
    assert processes_ended(let_go(model))


def test_an_idle_worker_exits_and_the_next_fit_forks_anew(monkeypatch):
    forking_fits(monkeypatch)
    monkeypatch.setattr(forked_steps, "IDLE_SECONDS", 0.2)
    x, y = batch(32)
    model = small_cnn()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first = list(model.step_workers.processes)
    assert processes_ended(first)  # by itself, after 0.2 s without a message
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.step_workers.processes != first and all(p.is_alive() for p in model.step_workers.processes)
    assert processes_ended(let_go(model))


@needs_fork
def test_workers_that_never_start_leave_threads_to_do_the_work(monkeypatch):
    forking_fits(monkeypatch)
    monkeypatch.setattr(forked_steps, "START_SECONDS", 0.2)
    monkeypatch.setattr(forked_steps, "_serve", lambda *args: time.sleep(60))  # stuck before "ready"
    model = small_cnn()
    before = set(multiprocessing.active_children())
    with split_steps.split_steps(model, 16, split_steps.MIN_FORKED_STEPS) as steps:
        assert isinstance(steps, threaded_steps.ThreadedSteps)
        assert children_since(before) == []  # the stuck worker was killed
        loss, _ = steps.compute_gradients(*batch())
    assert np.isfinite(loss)


@needs_fork
@pytest.mark.parametrize("started", [False, True])
def test_no_fork_in_a_process_that_started_mpi(monkeypatch, started):
    monkeypatch.setattr(threading, "active_count", lambda: 1)

    class MPI:
        @staticmethod
        def Is_initialized():  # noqa: N802 - mpi4py's name
            return started

    monkeypatch.setitem(sys.modules, "mpi4py.MPI", MPI)
    assert split_steps.forking_allowed() is not started


class SumsInTheMainProcessOnly(layers.Layer):
    """A layer that asks for a sum over the parts in the main process only: the parts go out of step."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.main = os.getpid()

    def forward(self, x, training=False):
        if training and self.replica_sum is not None and os.getpid() == self.main:
            self.replica_sum(np.zeros(1))
        return x

    def backward(self, grad_output, input_gradient=True):
        return grad_output


@needs_fork
def test_parts_out_of_step_end_the_step_with_a_named_error():
    model = models.Sequential(seed=1)
    model.add(SumsInTheMainProcessOnly(input_shape=INPUT_SHAPE))
    model.add(layers.Flatten())
    model.add(layers.Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    before = set(multiprocessing.active_children())
    with forked(model, 2, blas_controller()) as steps, \
            pytest.raises(RuntimeError, match="went out of step"):
        steps.compute_gradients(*batch())
    assert children_since(before) == []


def test_a_copy_of_the_program_forked_by_the_user_leaves_the_workers_alone(monkeypatch):
    """A process forked from the one that owns the workers (``os.fork`` in the user's program) that drops or
    closes its copy of them must not stop them: only their owner does."""
    forking_fits(monkeypatch)
    x, y = batch(32)
    model = small_cnn()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    child = os.fork()
    if child == 0:  # the copy: close its workers, then leave without running any exit handler
        model.step_workers.close()
        os._exit(0)
    os.waitpid(child, 0)
    assert all(process.is_alive() for process in model.step_workers.processes)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert processes_ended(let_go(model))


def test_a_copy_of_a_model_has_no_workers_and_the_model_keeps_its_own(monkeypatch):
    forking_fits(monkeypatch)
    x, y = batch(32)
    model = small_cnn()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    workers = model.step_workers
    copied = copy.deepcopy(model)
    assert copied.step_workers is None
    np.testing.assert_array_equal(copied.flat.params, model.flat.params)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.step_workers is workers and all(process.is_alive() for process in workers.processes)
    del workers
    assert processes_ended(let_go(model))


def test_an_interrupted_fit_stops_the_workers_and_the_next_fit_forks_anew(monkeypatch):
    """Ctrl-C (here from a callback) may stop the main process in the middle of a step: its workers go."""
    forking_fits(monkeypatch)
    x, y = batch(64)

    class Interrupt(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

    model = small_cnn()
    before = set(multiprocessing.active_children())
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first = list(model.step_workers.processes)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Interrupt()])
    assert model.step_workers is None and processes_ended(first)
    assert children_since(before) == []
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and model.step_workers.processes != first
    assert processes_ended(let_go(model))
