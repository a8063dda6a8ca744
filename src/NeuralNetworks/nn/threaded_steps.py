"""Training steps split over the cores: each thread computes the gradients of its part of the batch.

BLAS spreads one matrix product over the cores, but a convolutional network's step is more than its products:
im2col copies, pooling, BatchNormalization and activations are NumPy passes that run on one core, and the
products of a 64-image batch are too small for two BLAS threads to pay off (a CNN step then gains 10-30% from a
second core, where two independent halves would gain 90%). So, when the step is big enough, ``fit`` cuts each
batch into one contiguous part per core and computes every part at once, on its own thread with BLAS on one
thread: NumPy and BLAS release the GIL for the whole of every large operation, so the threads run in parallel.

Each extra thread works on a *replica*: a model rebuilt from the trained one's config (so every layer keeps its
own caches and buffers), given the trained model's weights before every step. Thread 0 uses the model itself.
What keeps the step the one-thread step, up to float32 rounding:

- each part's gradient is the mean over the part, so it is scaled by the part's share of the batch before the
  sum: the result is the gradient of the batch's mean loss, whatever the split;
- BatchNormalization computes the statistics of the whole batch through ``Layer.replica_sum`` (as in a
  data-parallel job over processes), summed in the same order on every thread;
- the optimizer steps the model once, from the summed gradients.

Dropout and seeded augmentation layers of a replica draw from their own streams, seeded from the model's at the
start of ``fit``: a seeded model still trains reproducibly for a given number of threads.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import layers, optimizers, random_streams
from ._structure import count, rows
from ._threads import blas_controller

if TYPE_CHECKING:
    from .models import Model

# Multiply-adds (forward pass) of one part below which a split costs more than it saves: the threads' handoff,
# the barriers of BatchNormalization and BLAS on one thread per part. Measured on 2 cores
# (benchmarks/threaded_steps.py): the default CNN (3.9M per sample) trains 1.7-2.0x as fast as on one thread
# at 32 images per part; the 784-512-256-10 MLP (0.5M per sample) half as fast as with BLAS alone at 64.
MIN_PART_MULTIPLY_ADDS = 50_000_000


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def blas_threads(controller: Any) -> int:
    """How many threads BLAS was set to use (``--threads``, ``threadpool_limits``): the cores we may fill."""
    counts = [info["num_threads"] for info in controller.info() if info["user_api"] == "blas"]
    return min(counts, default=1)


def forward_operations_per_sample(model: Model) -> int:
    """The forward pass's arithmetic per sample, summed over the layers as each counts it
    (``Layer.operations_per_sample``); ``_threads.multiply_adds_per_sample`` is the biggest product alone."""
    return sum(layer.operations_per_sample(layer.input_shape) for layer in model.layers
               if not isinstance(layer, layers.InputLayer))


def part_count(model: Model, batch_size: int, cores: int) -> int:
    """Parts to cut a batch into: up to ``cores``, while each part stays above ``MIN_PART_MULTIPLY_ADDS``."""
    per_sample = forward_operations_per_sample(model)
    parts = cores
    while parts > 1 and (batch_size // parts) * per_sample < MIN_PART_MULTIPLY_ADDS:
        parts -= 1
    return parts


def replicable(model: Model) -> bool:
    """True when every layer is a built-in one, whose copy from the config holds all its state (a layer of
    one's own may keep more, or not be safe to run beside its copy)."""
    return all(type(layer) in layers.BUILT_IN or isinstance(layer, layers.InputLayer) for layer in model.layers)


@contextlib.contextmanager
def threaded_steps(model: Model, batch_size: int) -> Iterator[ThreadedSteps | None]:
    """The context ``fit``'s epochs run in: ``ThreadedSteps`` over the cores when a step is big enough (BLAS
    then on one thread), else None under the model's own BLAS thread choice. Only the main thread splits,
    since only it may change BLAS's thread count (see ``_threads``)."""
    controller = blas_controller() if threading.current_thread() is threading.main_thread() else None
    cores = min(available_cores(), blas_threads(controller)) if controller is not None else 1
    parts = part_count(model, batch_size, cores) if cores > 1 and replicable(model) else 1
    with model.blas_threads(batch_size):
        if parts == 1:
            yield None
            return
        with ThreadedSteps(model, parts, controller) as steps:
            yield steps


class ThreadedSteps:
    """Gradients of a batch computed in ``parts`` threads (see the module docstring); a context manager that
    starts the threads and gives the layers back their one-process ``replica_sum`` at its end."""

    def __init__(self, model: Model, parts: int, controller: Any) -> None:
        self.model = model
        self.parts = parts
        self._controller = controller  # threadpoolctl's: BLAS on one thread while the parts run
        self.replicas = [self._replica(rank) for rank in range(1, parts)]
        self._barrier = threading.Barrier(parts)
        # Two rounds of slots, used in turn: a thread writes a round's slot only after every thread has passed
        # the barrier of the sum before, and so has read the round it overwrites.
        self._slots: list[list[np.ndarray | None]] = [[None] * parts, [None] * parts]
        self._sums_done = [0] * parts  # per thread, written by that thread only
        self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="training-part")

    def __enter__(self) -> ThreadedSteps:
        for rank, replica in enumerate([self.model, *self.replicas]):
            for layer in replica.layers:
                layer.replica_sum = self._summer(rank)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._pool.shutdown(wait=True)
        for layer in self.model.layers:
            vars(layer).pop("replica_sum", None)  # back to the class default: one process, one thread

    def _replica(self, rank: int) -> Model:
        """A copy of the model for thread ``rank``: its own layers (caches, buffers) and random streams; the
        weights are the model's, copied in before every step."""
        model = self.model
        replica = type(model).from_config(model.get_config())
        replica.compile(optimizer=optimizers.SGD(), loss=model.loss)  # computes gradients only: no slots
        replica.prepare_training()
        if replica.flat.param_names != model.flat.param_names or replica.flat.state_names != model.flat.state_names:
            raise RuntimeError(f"{model.name}: a copy of the model from its config packs its weights differently")
        for generator in random_streams.generators(replica):
            random_streams.restart(generator, random_streams.draw_seed(model.rng), rank)
        return replica

    def _summer(self, rank: int) -> Callable[[np.ndarray], np.ndarray]:
        def replica_sum(array: np.ndarray) -> np.ndarray:
            """``array`` replaced by its sum over the threads, added in rank order on every thread."""
            slots = self._slots[self._sums_done[rank] % 2]
            self._sums_done[rank] += 1
            slots[rank] = array.copy()
            self._barrier.wait()
            array[...] = sum(slots[1:], start=slots[0].copy())
            return array

        return replica_sum

    def compute_gradients(self, x: Any, y: Any, sample_weight: np.ndarray | None = None) -> tuple[float, Any]:
        """``Model.compute_gradients`` of the whole batch, into ``model.flat.grads``: the loss and predictions."""
        model = self.model
        n = count(x)
        bounds = [n * rank // self.parts for rank in range(self.parts + 1)]
        for replica in self.replicas:
            replica.flat.params[...] = model.flat.params
            replica.flat.state[...] = model.flat.state  # a frozen BatchNormalization's moving statistics
        with self._controller.limit(limits=1, user_api="blas"):
            results = self._run_parts(bounds, x, y, sample_weight)
        grads = model.flat.grads
        grads *= grads.dtype.type(bounds[1] / n)
        loss_value = results[0][0] * bounds[1] / n
        for rank, replica in enumerate(self.replicas, start=1):
            share = (bounds[rank + 1] - bounds[rank]) / n
            grads += grads.dtype.type(share) * replica.flat.grads
            loss_value += share * results[rank][0]
        return loss_value, _joined([y_pred for _, y_pred in results])

    def _run_parts(self, bounds: list[int], x: Any, y: Any, sample_weight: np.ndarray | None) -> list:
        """Every part's (loss, predictions), part 0 on this thread; the first real error if any part failed
        (the others then stop at their next barrier, broken on purpose)."""
        futures = [self._pool.submit(self._part, replica, bounds[rank], bounds[rank + 1], x, y, sample_weight)
                   for rank, replica in enumerate(self.replicas, start=1)]
        results, errors = [], []
        try:
            results.append(self._part(self.model, bounds[0], bounds[1], x, y, sample_weight))
        except BaseException as error:  # noqa: BLE001 - raised below, once the other parts have stopped
            errors.append(error)
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as error:  # noqa: BLE001 - likewise
                errors.append(error)
        if errors:  # every part has stopped: the barrier and the rounds start afresh
            self._barrier.reset()
            self._sums_done = [0] * self.parts
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        return results

    def _part(self, replica: Model, start: int, stop: int, x: Any, y: Any,
              sample_weight: np.ndarray | None) -> tuple[float, Any]:
        part = slice(start, stop)
        weights = None if sample_weight is None else sample_weight[part]
        try:
            return replica.compute_gradients(rows(x, part), rows(y, part), weights)
        except BaseException:
            self._barrier.abort()
            raise


def _joined(predictions: list[Any]) -> Any:
    """The parts' predictions as one batch (a list of outputs stays a list)."""
    if isinstance(predictions[0], list | tuple):
        return type(predictions[0])(np.concatenate(outputs) for outputs in zip(*predictions, strict=True))
    return np.concatenate(predictions)
