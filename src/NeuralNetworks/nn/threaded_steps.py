"""A batch's parts computed in threads (see ``split_steps``), where the parts cannot run in forked processes.

NumPy and BLAS release the GIL for the whole of every large operation, so the threads run in parallel between
the short stretches of Python. Each extra thread works on a *replica*: a model rebuilt from the trained one's
config (so every layer keeps its own caches and buffers), given the trained model's weights before every step.
Thread 0 uses the model itself. BatchNormalization's ``replica_sum`` meets the other threads at a barrier and
adds their arrays in rank order, the same sum on every thread.

The replicas stay with the model (``Network.step_replicas``) for its next fit: building one and filling its
buffers the first time costs 40-60 ms for a shipped CNN, a tenth of a half-second fit. The next fit reuses them
if the model's config and loss are those they were built for, after copying every weight into them (frozen
ones included), and builds new ones otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import optimizers, random_streams
from ._batch_parts import bounds, combine, copy_key, joined, part_of
from ._structure import count

if TYPE_CHECKING:
    from .models import Model


class ThreadedSteps:
    """Gradients of a batch computed in ``parts`` threads (see the module docstring); a context manager that
    starts the threads and gives the layers back their one-process ``replica_sum`` at its end."""

    def __init__(self, model: Model, parts: int, controller: Any) -> None:
        self.model = model
        self.parts = parts
        self._controller = controller  # threadpoolctl's: BLAS on one thread while the parts run
        self.replicas = self._replicas()
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
        for replica in (self.model, *self.replicas):
            for layer in replica.layers:
                vars(layer).pop("replica_sum", None)  # back to the class default: one process, one thread

    def _replicas(self) -> list[Model]:
        """A copy of the model per extra thread, the ones kept from the last fit when still the model's (see
        the module docstring), each on random streams of its own drawn from the model's generator."""
        model = self.model
        key = copy_key(model)
        kept_key, kept = model.step_replicas or (None, [])
        if key is None or kept_key != key:
            kept = []
        weights = model.get_weights() if kept else []
        seeds = random_streams.part_seeds(model, self.parts)
        replicas = []
        for rank in range(1, self.parts):
            if rank <= len(kept):
                replica = kept[rank - 1]
                replica.set_weights(weights)  # the step copies the trainable ones again; frozen ones only here
            else:
                replica = self._replica()
            random_streams.restart_all(replica, seeds[rank - 1], rank)
            replicas.append(replica)
        model.step_replicas = (key, replicas)
        return replicas

    def _replica(self) -> Model:
        """A new copy of the model from its config: its own layers (caches, buffers); the weights are the
        model's, copied in before every step."""
        model = self.model
        replica = type(model).from_config(model.get_config())
        replica.compile(optimizer=optimizers.SGD(), loss=model.loss)  # computes gradients only: no slots
        replica.prepare_training()
        if replica.flat.param_names != model.flat.param_names or replica.flat.state_names != model.flat.state_names:
            raise RuntimeError(f"{model.name}: a copy of the model from its config packs its weights differently")
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
        limits = bounds(count(x), self.parts)
        for replica in self.replicas:
            replica.flat.params[...] = model.flat.params
            replica.flat.state[...] = model.flat.state  # a frozen BatchNormalization's moving statistics
        with self._controller.limit(limits=1, user_api="blas"):
            results = self._run_parts(limits, x, y, sample_weight)
        loss_value = combine(model.flat.grads, [replica.flat.grads for replica in self.replicas],
                             [loss for loss, _ in results], limits)
        return loss_value, joined([y_pred for _, y_pred in results])

    def _run_parts(self, limits: list[int], x: Any, y: Any, sample_weight: np.ndarray | None) -> list:
        """Every part's (loss, predictions), part 0 on this thread; the first real error if any part failed
        (the others then stop at their next barrier, broken on purpose)."""
        futures = [self._pool.submit(self._part, replica, limits[rank], limits[rank + 1], x, y, sample_weight)
                   for rank, replica in enumerate(self.replicas, start=1)]
        results, errors = [], []
        try:
            results.append(self._part(self.model, limits[0], limits[1], x, y, sample_weight))
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
        try:
            return replica.compute_gradients(*part_of(x, y, sample_weight, slice(start, stop)))
        except BaseException:
            self._barrier.abort()
            raise

