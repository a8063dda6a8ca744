"""A batch's parts computed in worker processes forked when ``fit``'s epochs start (see ``split_steps``).

Threads over one process share the GIL between NumPy calls and meet at every exchange of BatchNormalization
with a Python barrier; processes do neither. Forking (Linux only) hands each worker an exact copy of the model,
with no re-import of the user's script, no pickled model and no files. Per step:

- the main process writes the model's weights (and frozen moving statistics) into memory shared with every
  worker, then sends each worker its part of the batch over a pipe;
- every process computes its part's gradients on one BLAS thread. BatchNormalization's ``replica_sum`` sends
  each worker's array to the main process, which adds them in rank order and sends the same sum back;
- each worker writes its gradients into its own shared buffer and sends back its loss and predictions; the
  main process sums the gradients by each part's share of the batch, and the optimizer steps once.

Messages are a JSON header and raw array bytes (no pickle). A worker that fails reports the error, which ends
the step in the main process with the same error; a worker that dies ends it with ``PartProcessError``. Workers
ignore Ctrl-C (the main process stops them) and exit when the main process closes their pipe or dies.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import mmap
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import random_streams
from ._batch_parts import bounds, combine, joined, part_of
from ._structure import count

if TYPE_CHECKING:
    from .models import Model

START_SECONDS = 60.0  # a worker not ready by then is stuck (a lock copied while held): threads instead
STOP_SECONDS = 5.0  # a worker still running this long after its pipe closed is killed


class StartError(RuntimeError):
    """The worker processes could not be started (fork refused, or a worker never became ready)."""


class PartProcessError(RuntimeError):
    """A worker process stopped in the middle of training (killed, or out of memory)."""


class _Aborted(Exception):
    """Raised in a worker whose step the main process ended because another part failed."""


# -- messages: a JSON header, then the bytes of each array ----------------------------------------------------
def _send(connection: Connection, header: dict, arrays: Sequence[np.ndarray] = ()) -> None:
    contiguous = [np.ascontiguousarray(array) for array in arrays]
    if any(array.dtype.hasobject for array in contiguous):
        raise TypeError("a training part's arrays must be numbers, not Python objects")
    layouts = [[array.dtype.str, list(array.shape)] for array in contiguous]
    connection.send_bytes(json.dumps({**header, "arrays": layouts}).encode())
    for array in contiguous:
        connection.send_bytes(array.reshape(-1).view(np.uint8))


def _receive(connection: Connection) -> tuple[dict, list[np.ndarray]]:
    header = json.loads(connection.recv_bytes())
    arrays = []
    for dtype, shape in header.pop("arrays"):
        array = np.empty(shape, dtype=np.dtype(dtype))
        connection.recv_bytes_into(array.reshape(-1).view(np.uint8))
        arrays.append(array)
    return header, arrays


def _flattened(value: Any) -> tuple[Any, list[np.ndarray]]:
    """``value`` (None, an array, or a tuple or list of arrays) as a JSON-able form and its arrays."""
    if value is None:
        return None, []
    if isinstance(value, tuple | list):
        return [type(value).__name__, len(value)], [np.asarray(item) for item in value]
    return "array", [np.asarray(value)]


def _rebuilt(form: Any, arrays: list[np.ndarray]) -> Any:
    """The value ``_flattened`` took apart, taking its arrays from the front of ``arrays``."""
    if form is None:
        return None
    if form == "array":
        return arrays.pop(0)
    kind, length = form
    items = [arrays.pop(0) for _ in range(length)]
    return tuple(items) if kind == "tuple" else items


def _shared_like(array: np.ndarray) -> np.ndarray:
    """A zeroed array of ``array``'s size and dtype in anonymous shared memory: forked workers see the same
    pages, and the memory goes with the last process holding it (nothing to clean up on disk)."""
    size = max(array.nbytes, 1)
    return np.frombuffer(mmap.mmap(-1, size), dtype=array.dtype, count=array.size)


def _error_of(header: dict) -> BaseException:
    """A worker's reported error as an exception: a built-in exception type as itself, any other in words."""
    kind = getattr(builtins, header["type"], None)
    if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, OSError):
        return kind(header["message"])
    return RuntimeError(f"a training part failed with {header['type']}: {header['message']}")


class ForkedSteps:
    """Gradients of a batch computed in ``parts`` processes, this one and ``parts - 1`` forked workers (see the
    module docstring); a context manager that stops the workers and gives the layers back their one-process
    ``replica_sum`` at its end. Raises ``StartError`` when the workers cannot start."""

    def __init__(self, model: Model, parts: int, controller: Any) -> None:
        model.prepare_training()
        self.model = model
        self.parts = parts
        self._controller = controller  # threadpoolctl's: BLAS on one thread while the parts run
        self._params = _shared_like(model.flat.params)
        self._state = _shared_like(model.flat.state)
        self._grads = [_shared_like(model.flat.grads) for _ in range(1, parts)]
        seeds = random_streams.part_seeds(model, parts)
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        self._waiting = [False] * (parts - 1)  # a worker that sent its array to sum and waits for the total
        self._finals: dict[int, tuple[dict, list[np.ndarray]]] = {}  # each worker's last message of the step
        try:
            for rank in range(1, parts):
                self._start(rank, seeds[rank - 1])
        except BaseException:
            self._stop(patience=0.0)
            raise

    def _start(self, rank: int, seeds: list[int]) -> None:
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, name=f"training-part-{rank}", daemon=True,
                                  args=(self.model, rank, theirs, [*self._connections, ours], self._params, self._state,
                                        self._grads[rank - 1], seeds, self._controller))
        for stream in (sys.stdout, sys.stderr):  # or the worker's exit would write their buffers again
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about forking a process with threads (BLAS's own count). The worker runs
                # only NumPy and this module, and a copied lock would stop it before "ready", caught below.
                warnings.simplefilter("ignore", DeprecationWarning)
                process.start()
        except OSError as error:
            raise StartError(f"could not fork a training process: {error}") from error
        finally:
            theirs.close()
        self._connections.append(ours)
        self._processes.append(process)
        if not ours.poll(START_SECONDS):
            raise StartError(f"training process {rank} did not start within {START_SECONDS:.0f} s")
        try:
            header, _ = _receive(ours)
        except (EOFError, OSError) as error:
            raise StartError(f"training process {rank} stopped as it started") from error
        if header.get("kind") != "ready":
            raise StartError(f"training process {rank} answered {header.get('kind')!r} instead of 'ready'")

    def __enter__(self) -> ForkedSteps:
        for layer in self.model.layers:
            layer.replica_sum = self._sum
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()
        for layer in self.model.layers:
            vars(layer).pop("replica_sum", None)  # back to the class default: one process

    def _stop(self, patience: float = STOP_SECONDS) -> None:
        """Close every pipe (a worker exits when it sees the end) and reap the workers, killing any that
        does not exit within ``patience`` seconds."""
        for connection in self._connections:
            connection.close()
        for process in self._processes:
            process.join(patience)
            if process.exitcode is None:
                process.kill()
                process.join()

    # -- the main process's side of a step ------------------------------------------------------------------
    def compute_gradients(self, x: Any, y: Any, sample_weight: np.ndarray | None = None) -> tuple[float, Any]:
        """``Model.compute_gradients`` of the whole batch, into ``model.flat.grads``: the loss and predictions."""
        model = self.model
        limits = bounds(count(x), self.parts)
        self._params[...] = model.flat.params
        self._state[...] = model.flat.state  # a frozen BatchNormalization's moving statistics
        for rank in range(1, self.parts):
            part = part_of(x, y, sample_weight, slice(limits[rank], limits[rank + 1]))
            forms, arrays = zip(*(_flattened(value) for value in part), strict=True)
            self._exchange(rank, _send, {"kind": "step", "forms": forms}, [a for group in arrays for a in group])
        finals = self._finals = {}
        failure: BaseException | None = None
        try:
            with self._controller.limit(limits=1, user_api="blas"):
                own = model.compute_gradients(*part_of(x, y, sample_weight, slice(limits[0], limits[1])))
        except BaseException as error:  # noqa: BLE001 - raised below, once every worker has ended its step
            failure = error
        self._finish_step(finals, abort=failure is not None)
        errors = [_error_of(header) for header, _ in finals.values() if header["kind"] == "error"]
        if failure is not None and not isinstance(failure, _Aborted):
            raise failure
        if errors:
            raise errors[0]
        if failure is not None:  # a worker ended its step where this one expected a sum: a bug, named
            raise RuntimeError("the training processes went out of step: a worker finished while this process "
                               "waited for its BatchNormalization sums")
        results = [own, *((finals[rank][0]["loss"], _rebuilt(finals[rank][0]["predictions"], finals[rank][1]))
                          for rank in range(1, self.parts))]
        loss_value = combine(model.flat.grads, self._grads, [loss for loss, _ in results], limits)
        return loss_value, joined([y_pred for _, y_pred in results])

    def _finish_step(self, finals: dict[int, tuple[dict, list[np.ndarray]]], abort: bool) -> None:
        """Read every worker's last message of the step into ``finals``; if the step failed here, answer each
        worker's pending or coming sums with "abort" so that it ends its step too."""
        for rank in range(1, self.parts):
            while rank not in finals:
                if self._waiting[rank - 1] and abort:
                    self._exchange(rank, _send, {"kind": "abort"})
                    self._waiting[rank - 1] = False
                header, arrays = self._exchange(rank, _receive)
                if header["kind"] == "sum":
                    self._waiting[rank - 1] = True
                    abort = True  # a worker cannot be asking for a sum once this process's part ended well
                else:
                    finals[rank] = (header, arrays)

    def _sum(self, array: np.ndarray) -> np.ndarray:
        """This process's ``replica_sum``: ``array`` plus every worker's, in rank order, sent back to each."""
        total = array.copy()
        for rank in range(1, self.parts):
            header, arrays = self._exchange(rank, _receive)
            if header["kind"] != "sum":  # the worker's step ended (an error): so does this one
                self._finals[rank] = (header, arrays)
                raise _Aborted
            self._waiting[rank - 1] = True
            total += arrays[0]
        for rank in range(1, self.parts):
            self._exchange(rank, _send, {"kind": "total"}, [total])
            self._waiting[rank - 1] = False
        array[...] = total
        return array

    def _exchange(self, rank: int, action: Callable[..., Any], *args: Any) -> Any:
        """``action(connection, *args)`` on worker ``rank``'s pipe; a worker gone is a ``PartProcessError``."""
        try:
            return action(self._connections[rank - 1], *args)
        except (EOFError, OSError) as error:
            process = self._processes[rank - 1]
            process.join(STOP_SECONDS)
            raise PartProcessError(f"training process {rank} stopped in the middle of a step (exit code "
                                   f"{process.exitcode}); fit cannot go on without it") from error


# -- a worker's side -------------------------------------------------------------------------------------------
def _serve(model: Model, rank: int, connection: Connection, others: list[Connection], params: np.ndarray,
           state: np.ndarray, grads: np.ndarray, seeds: list[int], controller: Any) -> None:
    """A worker's life: compute the gradients of each part it is sent, until its pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    for other in others:  # the main process's pipe ends, copied by the fork: held here, no worker would see EOF
        other.close()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    random_streams.restart_all(model, seeds, rank)

    def replica_sum(array: np.ndarray) -> np.ndarray:
        _send(connection, {"kind": "sum"}, [array])
        header, arrays = _receive(connection)
        if header["kind"] != "total":
            raise _Aborted
        array[...] = arrays[0]
        return array

    for layer in model.layers:
        layer.replica_sum = replica_sum
    with contextlib.suppress(EOFError, OSError), controller.limit(limits=1, user_api="blas"):
        _send(connection, {"kind": "ready"})
        while True:
            header, arrays = _receive(connection)
            x, y, sample_weight = (_rebuilt(form, arrays) for form in header["forms"])
            model.flat.params[...] = params
            model.flat.state[...] = state
            try:
                loss_value, y_pred = model.compute_gradients(x, y, sample_weight)
            except _Aborted:
                _send(connection, {"kind": "aborted"})
                continue
            except Exception as error:  # noqa: BLE001 - reported to the main process, which raises it
                _send(connection, {"kind": "error", "type": type(error).__name__, "message": str(error)})
                continue
            grads[...] = model.flat.grads
            form, predictions = _flattened(y_pred)
            _send(connection, {"kind": "done", "loss": float(loss_value), "predictions": form}, predictions)
