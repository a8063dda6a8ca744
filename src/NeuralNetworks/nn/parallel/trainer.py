"""Synchronous data-parallel ``fit``: every process holds the whole model and computes its part of each global
batch; the gradients are averaged with one sum of the contiguous gradient buffer, and every process then takes
the same optimizer step.

What keeps the processes identical:

- At the start, rank 0's random state is broadcast (so every process draws the same validation split and the
  same epoch orders), then its parameters, non-trainable state (moving statistics), optimizer slots and step
  count (so processes that built or loaded different weights start from rank 0's).
- Each global batch (sorted positions of the shared epoch order) is cut into ``size`` contiguous parts; process
  ``r`` computes the ``r``-th. Its gradient is the mean over its part, so it is scaled by its share of the
  global batch before the sum: the result is the gradient of the global batch's mean loss, for any split.
- BatchNormalization computes statistics of the global batch through ``Layer.replica_sum``; its moving
  statistics are then the same everywhere.
- Losses and metrics are summed over processes (sample-weighted), so every process sees the same epoch logs and
  callbacks such as EarlyStopping or ReduceLROnPlateau decide alike. Display and file-writing callbacks
  (``Callback.root_only``) run on rank 0 only.

Dropout and augmentation draw differently on every process (each gets its own random streams for the epoch,
derived from the shared ones and its rank, then all return to the shared ones). BLAS uses at most this
process's share of the machine's cores. A failure on any process ends the whole job through ``engine.abort``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import traceback
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import random_streams
from .._threads import blas_controller
from ..callbacks import Callback, CallbackList, History
from ..sources import InOrder, Order, Samples, SourceSamples, batches
from ..training import Logs, Totals, Trainer, evaluation_totals, finite_loss
from .engine import Engine
from .environment import cores_per_process

if TYPE_CHECKING:
    from ..models import Model

ROOT = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXPECTED_ERRORS = (ValueError, TypeError, OSError)  # bad input or files: one line, no traceback


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C reached a process of the job: every process stops after the same step, with the same weights, and
    raises this from ``fit`` (rank 0 may then save, as one process does on Ctrl-C)."""


@contextlib.contextmanager
def interrupt_flag() -> Iterator[list[bool]]:
    """While the context lasts, SIGINT (Ctrl-C, which ``mpiexec`` forwards to every process) only sets
    ``flag[0]``, so that the processes stop together at a step boundary instead of wherever each was (one inside
    a sum its peers never join). Outside the main thread, where no handler can be set, nothing changes."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def note(signum, frame) -> None:
        flag[0] = True

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def share_of_cores() -> contextlib.AbstractContextManager:
    """Limit BLAS to this process's share of the machine's cores (``environment.cores_per_process``), or to
    fewer threads if it was limited so already: N processes with all cores' threads each would oversubscribe
    the machine, and BLAS threads waiting for descheduled ones slow every product several-fold."""
    controller = blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    current = [info["num_threads"] for info in controller.info() if info["user_api"] == "blas"]
    return controller.limit(limits=min([cores_per_process(), *current]), user_api="blas")


def failure_report(error: BaseException, rank: int, size: int) -> tuple[str, int]:
    """The message and exit status a process that failed ends the job with."""
    where = f"process {rank} of {size}"
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted on {where}; stopping all {size} processes", EXIT_INTERRUPTED
    if isinstance(error, EXPECTED_ERRORS):
        return f"error: {where}: {error}; stopping all {size} processes", EXIT_BAD_INPUT
    trace = "".join(traceback.format_exception(error))
    return f"{trace}error: {where} failed ({type(error).__name__}: {error}); stopping all {size} processes", \
        EXIT_FAILED


class DataParallelTrainer(Trainer):
    """``fit`` over the processes of ``engine`` (see the module docstring). Every process runs the same program
    and calls ``fit`` with the same arguments; the data may be arrays (each process holds them) or a
    ``SampleSource`` (each process gathers only its part of every batch).

    ``communication_seconds`` accumulates the time spent in the engine's sums (waiting for the slowest process
    included), for benchmarks.
    """

    def __init__(self, model: Model, engine: Engine) -> None:
        super().__init__(model)
        self.engine = engine
        self.communication_seconds = 0.0
        self._reduce_batch_logs = False
        self._launcher: int | None = None
        self._interrupted = [False]  # set by Ctrl-C during fit (interrupt_flag)
        self._data: tuple[Samples, Samples | None] = ()  # type: ignore[assignment]  # set by training_data

    @property
    def is_root(self) -> bool:
        return self.engine.rank == ROOT

    # -- the job ------------------------------------------------------------------------------------------
    def fit(self, x: object, y: object = None, epochs: int = 1, batch_size: int = 32,
            validation_data: object = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[Callback] | None = None, verbose: int = 1,
            **weights: object) -> History:
        """``Trainer.fit`` on every process, ``batch_size`` being the global batch; any exception ends every
        process of the job (never a hang). ``class_weight``/``sample_weight`` are refused (``weighting_for``)."""
        self._launcher = os.getppid()  # the launcher's helper that started this process
        try:
            self._share_random_state()  # before the validation split, which draws from it
            with share_of_cores(), interrupt_flag() as self._interrupted:
                return super().fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                                   validation_split=validation_split, shuffle=shuffle, callbacks=callbacks,
                                   verbose=verbose, **weights)
        except JobInterrupted:
            raise  # every process stopped at the same step: the caller decides (the command line saves on rank 0)
        except BaseException as error:
            self.engine.abort(*failure_report(error, self.engine.rank, self.engine.size))

    def evaluate(self, x: object, y: object = None) -> Logs:
        """``Trainer.evaluate`` with each process computing its part; any exception ends the job."""
        try:
            with share_of_cores():
                return super().evaluate(x, y)
        except BaseException as error:
            self.engine.abort(*failure_report(error, self.engine.rank, self.engine.size))

    def callbacks(self, callbacks: list[Callback]) -> list[Callback]:
        # Whether batch logs are summed after every batch must be the same decision on every process.
        self._reduce_batch_logs = any(type(c).on_batch_end is not Callback.on_batch_end for c in callbacks)
        return callbacks if self.is_root else [c for c in callbacks if not c.root_only]

    def training_data(self, x: object, y: object, validation_data: object,
                      validation_split: float) -> tuple[Samples, Samples | None]:
        """``Trainer.training_data``, refused unless there is enough of it that each process has a step."""
        train, validation = super().training_data(x, y, validation_data, validation_split)
        self._data = (train, validation)  # compared over processes in ``begin``, after the models
        size = self.engine.size
        if len(train) < size:
            raise ValueError(f"{len(train)} training samples cannot be split over {size} processes: each process "
                             f"needs at least one sample of every step, so at least {size} training samples (1 per "
                             f"process); train on more data or start fewer processes")
        return train, validation

    def steps(self, samples: int, batch_size: int) -> int:
        if batch_size < self.engine.size:
            raise ValueError(f"batch_size={batch_size} cannot be split over {self.engine.size} processes: give "
                             f"every process at least one sample (batch_size >= {self.engine.size})")
        return samples // batch_size + (samples % batch_size >= self.engine.size)

    @contextlib.contextmanager
    def step_threads(self, batch_size: int, steps: int) -> Iterator[None]:
        """One thread per step on each process: the processes split the batch (and BatchNormalization sums
        over them through ``replica_sum``, which a split over threads would replace)."""
        with self.model.blas_threads(batch_size):
            yield None

    def begin(self) -> None:
        self._check_same_model()
        self._check_same_data(*self._data)  # else a sum of unequal buffers ends the job in MPI's own abort
        flat, optimizer = self.model.flat, self.model.optimizer
        for array in (flat.params, flat.state, *(optimizer.slots[0].values() if optimizer.slots else ())):
            self.engine.broadcast(array, ROOT)
        iterations = self.engine.broadcast(np.array([optimizer.iterations], dtype=np.float64), ROOT)
        optimizer.iterations = int(iterations[0])
        for layer in self.model.layers:
            layer.replica_sum = self._sum

    def end(self) -> None:
        for layer in self.model.layers:
            vars(layer).pop("replica_sum", None)  # back to the class default: one process
        self.check_launcher()

    # -- one epoch ----------------------------------------------------------------------------------------
    def part(self, index: np.ndarray) -> np.ndarray | None:
        """This process's contiguous part of a global batch; None when the batch has fewer samples than there
        are processes (only an epoch's last batch can: it is left out, and reshuffling covers it later)."""
        size, rank = self.engine.size, self.engine.rank
        count = len(index)
        if count < size:
            return None
        return index[count * rank // size:count * (rank + 1) // size]

    def train_epoch(self, train: Samples, batch_size: int, shuffle: bool, callback_list: CallbackList) -> Logs:
        model = self.model
        order = train.order(model.rng if shuffle else None)
        shared_states = self._own_random_streams()
        totals = Totals(model)
        try:
            for batch, (count, x, y) in enumerate(batches(train, order, batch_size, self.part)):
                loss_value, y_pred = self.train_step(x, y, share=len(y) / count)
                if self._sum(np.array([float(self._interrupted[0])]))[0]:  # Ctrl-C on any process: all stop here
                    raise JobInterrupted
                totals.add(model, finite_loss(loss_value, batch), y, y_pred)
                if self._reduce_batch_logs:
                    running = self._sum(totals.sums.copy())
                    if callback_list.wants_batch_logs:
                        callback_list.on_batch_end(batch, totals.means(running))
        finally:  # every process back on the shared random streams
            for generator, state in shared_states:
                generator.bit_generator.state = state
        self.check_launcher()
        return totals.means(self._sum(totals.sums.copy()))

    def check_launcher(self) -> None:
        """Raise if the launcher's helper process that started this one has gone (killed): the launcher then
        reports the job failed, so this process must stop rather than go on to write files for it."""
        if self._launcher is not None and os.getppid() != self._launcher:
            raise RuntimeError(f"the MPI launcher's helper process (pid {self._launcher}) that started this process "
                               "has ended: the job failed, so this process stops without writing its results")

    def train_step(self, x: np.ndarray, y: np.ndarray, share: float | None = None) -> tuple[float, np.ndarray]:
        """One step on this process's part ``(x, y)`` of a global batch, ``share`` of it (default: an equal
        part): local gradients, scaled by ``share``, summed over processes in one call, then the step."""
        model = self.model
        loss_value, y_pred = model.compute_gradients(x, y)
        grads = model.flat.grads
        grads *= grads.dtype.type(1 / self.engine.size if share is None else share)
        self._sum(grads)
        model.apply_gradients()
        return loss_value, y_pred

    def evaluate_samples(self, samples: Samples) -> Logs:
        order = samples.order(None)
        size, rank = self.engine.size, self.engine.rank
        start, stop = len(order) * rank // size, len(order) * (rank + 1) // size
        totals = evaluation_totals(self.model, samples, _slice(order, start, stop))
        return totals.means(self._sum(totals.sums.copy()))

    # -- helpers ------------------------------------------------------------------------------------------
    def _sum(self, array: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.engine.sum(array)
        finally:
            self.communication_seconds += time.perf_counter() - start

    def _share_random_state(self) -> None:
        """Every process continues rank 0's random stream (shuffling, validation split)."""
        encoded = json.dumps(self.model.rng.bit_generator.state).encode("utf-8")
        length = self.engine.broadcast(np.array([len(encoded)], dtype=np.int64), ROOT)
        buffer = np.zeros(int(length[0]), dtype=np.uint8)
        if self.is_root:
            buffer[:] = np.frombuffer(encoded, dtype=np.uint8)
        self.model.rng.bit_generator.state = json.loads(self.engine.broadcast(buffer, ROOT).tobytes())

    def _own_random_streams(self) -> list[tuple[np.random.Generator, dict]]:
        """Give this process random streams of its own for the epoch, each seeded from a shared one and the rank:
        the model's (Dropout masks, augmentation without a seed) and every seeded layer's own generator (so the
        processes do not all draw the same transforms). Returns (generator, shared state to return to) pairs:
        the model's as it was (its draw here repeats no other), the layers' past this draw (so that the next
        epoch's streams differ from this one's)."""
        shared = random_streams.generators(self.model)
        model_state = shared[0].bit_generator.state
        seeds = [random_streams.draw_seed(generator) for generator in shared]
        pairs = [(shared[0], model_state), *((generator, generator.bit_generator.state) for generator in shared[1:])]
        random_streams.restart_all(self.model, seeds, self.engine.rank)
        return pairs

    def _check_same_data(self, train: Samples, validation: Samples | None) -> None:
        """Raise unless this process loaded what rank 0 loaded: sample counts, shapes, types and class labels."""
        mine, words = data_description(train, validation, self.model.labels)
        root = self.engine.broadcast(mine.copy(), ROOT)
        if not np.array_equal(mine, root):
            what = "sample shapes, types or class labels differ" if np.array_equal(mine[:2], root[:2]) else \
                f"rank 0 has {int(root[0])} training and {max(int(root[1]), 0)} validation samples"
            raise ValueError(f"this process loaded {words}, unlike rank 0 ({what}): every process must read the "
                             "same data (the same files under --data-dir, --classes and --max-per-class)")

    def _check_same_model(self) -> None:
        """Raise unless this process's model has rank 0's layout (else the sums would mix unrelated numbers)."""
        flat = self.model.flat
        names = "\n".join((*flat.param_names, *flat.state_names))
        mine = np.array([flat.params.size, flat.state.size, zlib.crc32(names.encode("utf-8"))], dtype=np.float64)
        root = self.engine.broadcast(mine.copy(), ROOT)
        if not np.array_equal(mine, root):
            raise ValueError(f"this process's model ({int(mine[0])} parameters) differs from rank 0's "
                             f"({int(root[0])} parameters, or other layer names): every process must build the "
                             "same model")


def data_description(train: Samples, validation: Samples | None, labels: dict | None) -> tuple[np.ndarray, str]:
    """What a process loaded, as numbers to compare over processes (counts, and checksums of the sample shape and
    type and of the class labels) and in words."""
    def kind(samples: Samples) -> tuple[tuple[int, ...], str]:
        if isinstance(samples, SourceSamples):
            return tuple(samples.source.sample_shape), "source"
        x, y = samples.gather(np.zeros(1, dtype=np.intp)) if len(samples) else (np.zeros(0), np.zeros(0))
        return x.shape[1:], f"{x.dtype} {y.shape[1:]} {y.dtype}"

    val = -1 if validation is None else len(validation)
    classes = json.dumps(sorted((str(k), str(v)) for k, v in (labels or {}).items()))
    shape, types = kind(train)
    described = repr((shape, types, None if validation is None else kind(validation)))
    numbers = np.array([len(train), val, zlib.crc32(described.encode()), zlib.crc32(classes.encode()),
                        len(labels or {})], dtype=np.float64)
    words = (f"{len(train)} training and {max(val, 0)} validation samples of shape {shape}, "
             f"{len(labels or {})} class labels")
    return numbers, words


def _slice(order: Order, start: int, stop: int) -> Order:
    """Positions ``start:stop`` of ``order``, still lazy when the order is."""
    if isinstance(order, InOrder):
        return InOrder(order.start + start, order.start + stop)
    return order[start:stop]
