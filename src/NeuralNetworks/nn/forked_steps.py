"""A batch's parts computed in worker processes forked by ``fit`` (see ``split_steps``), kept for the next fits.

Threads over one process share the GIL between NumPy calls and meet at every exchange of BatchNormalization
with a Python barrier; processes do neither. Forking (Linux only) hands each worker an exact copy of the model,
with no re-import of the user's script, no pickled model and no files. Per step:

- the main process writes the model's weights (and frozen moving statistics) into memory shared with every
  worker, then sends each worker its part of the batch over a pipe;
- every process computes its part's gradients on one BLAS thread. BatchNormalization's ``replica_sum`` sends
  each worker's array to the main process, which adds them in rank order and sends the same sum back;
- each worker writes its gradients into its own shared buffer and sends back its loss and predictions; the
  main process sums the gradients by each part's share of the batch, and the optimizer steps once.

Messages are a JSON header and raw array bytes (no pickle, ``_part_messages``). A worker that fails reports
the error, which ends the step in the main process with the same error; a worker that dies ends it with
``PartProcessError``. Workers ignore Ctrl-C (the main process stops them).

The workers (``Workers``) outlive the fit that forked them: the first step after a fork costs 70-100 ms more
than the next ones (every page either process writes faults once), so the model keeps them
(``Network.step_workers``) for its next fit while its config and loss are unchanged; that fit only sends them
new random streams. The main process tells them to exit when the model lets them go (``model.step_workers =
None``, or the model is collected), when a fit ends with an error and when the program exits; a worker also
exits when its pipe closes (the main process died) and after ``IDLE_SECONDS`` without a message.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import warnings
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import random_streams
from ._batch_parts import bounds, combine, copy_key, joined, part_of
from ._part_messages import error_of, flattened, rebuilt, receive, send, shared_like, wait_readable
from ._structure import count

if TYPE_CHECKING:
    from .models import Model

START_SECONDS = 60.0  # a worker not ready by then is stuck (a lock copied while held): threads instead
STOP_SECONDS = 5.0  # a worker still running this long after its pipe closed is killed
IDLE_SECONDS = 60.0  # a kept worker that hears nothing for this long exits (its model's next fit forks anew)


class StartError(RuntimeError):
    """The worker processes could not be started (fork refused, or a worker never became ready)."""


class PartProcessError(RuntimeError):
    """A worker process stopped in the middle of training (killed, or out of memory)."""


class _Aborted(Exception):
    """Raised in a worker whose step the main process ended because another part failed."""


def _stop(owner: int, connections: list[Connection], processes: list[Any], patience: float = STOP_SECONDS) -> None:
    """Tell every worker to exit and close its pipe (a worker also exits when it sees the end, unless a process
    forked later holds a copy of it), then reap the workers, killing any that does not exit within ``patience``
    seconds. Only in the process ``owner`` that forked them: a copy of it forked by the user's program leaves
    them alone."""
    if os.getpid() != owner:
        return
    for connection in connections:
        with contextlib.suppress(OSError):  # the worker is gone already
            send(connection, {"kind": "exit"})
        with contextlib.suppress(OSError):
            connection.close()
    for process in processes:
        process.join(patience)
        if process.exitcode is None:
            process.kill()
            process.join()


class Workers:
    """``parts - 1`` worker processes forked from this one, each with a copy of ``model`` as it is now, and the
    shared memory of their weights and gradients. Raises ``StartError`` when they cannot start."""

    def __init__(self, model: Model, parts: int, controller: Any) -> None:
        model.prepare_training()
        self.parts = parts
        self.key = copy_key(model)
        self.params = shared_like(model.flat.params)
        self.state = shared_like(model.flat.state)
        self.grads = [shared_like(model.flat.grads) for _ in range(1, parts)]
        self.connections: list[Connection] = []
        self.processes: list[Any] = []
        # Stops the workers when this object goes (its model let it go, or was collected) or the program ends.
        self._owner = os.getpid()
        self._finalizer = weakref.finalize(self, _stop, self._owner, self.connections, self.processes)
        seeds = random_streams.part_seeds(model, parts)
        try:
            for rank in range(1, parts):
                self._start(model, rank, seeds[rank - 1], controller)
        except BaseException:
            self.close(patience=0.0)
            raise

    def _start(self, model: Model, rank: int, seeds: list[int], controller: Any) -> None:
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, name=f"training-part-{rank}", daemon=True,
                                  args=(model, rank, theirs, [*self.connections, ours], self.params, self.state,
                                        self.grads[rank - 1], seeds, controller))
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
        self.connections.append(ours)
        self.processes.append(process)
        self._ready(rank, START_SECONDS)

    def _ready(self, rank: int, timeout: float) -> None:
        """Wait for worker ``rank``'s "ready"; ``StartError`` if it does not come."""
        connection = self.connections[rank - 1]
        if not connection.poll(timeout):
            raise StartError(f"training process {rank} did not start within {timeout:.0f} s")
        try:
            header, _ = receive(connection)
        except (EOFError, OSError) as error:
            raise StartError(f"training process {rank} stopped as it started") from error
        if header.get("kind") != "ready":
            raise StartError(f"training process {rank} answered {header.get('kind')!r} instead of 'ready'")

    def take_up(self, model: Model, parts: int) -> bool:
        """True if these workers can compute ``parts`` parts of ``model``'s steps for a new fit (``made_for``,
        and every worker alive); each then restarts on new random streams, drawn from the model as a fork
        would draw them."""
        if not (self._finalizer.alive and self.made_for(model, parts)
                and all(process.is_alive() for process in self.processes)):
            return False
        seeds = random_streams.part_seeds(model, parts)
        try:
            for rank, connection in enumerate(self.connections, start=1):
                send(connection, {"kind": "restart", "seeds": seeds[rank - 1]})
            for rank in range(1, parts):
                self._ready(rank, START_SECONDS)
        except (StartError, OSError):  # a worker left (idle) as the fit began
            return False
        return True

    def __reduce__(self) -> tuple:
        """A copy of a model (``copy.deepcopy``, pickle) has no workers: these serve this model, in this process,
        and their pipes and processes cannot be copied."""
        return type(None), ()

    def made_for(self, model: Model, parts: int) -> bool:
        """True while ``model``'s config, loss and weight layout are those the workers were forked with."""
        flat = model.flat
        return (parts == self.parts and flat is not None
                and (flat.params.size, flat.state.size, flat.grads.size)
                == (self.params.size, self.state.size, self.grads[0].size)
                and self.key is not None and copy_key(model) == self.key)

    def close(self, patience: float = STOP_SECONDS) -> None:
        """Stop the workers (at once if ``patience`` is 0); a second call does nothing."""
        if self._finalizer.detach() is not None:
            _stop(self._owner, self.connections, self.processes, patience)


class ForkedSteps:
    """Gradients of a batch computed in ``workers.parts`` processes, this one and the forked ``workers`` (see
    the module docstring); a context manager that gives the layers back their one-process ``replica_sum`` at
    its end, and stops the workers if the fit ended with an error (they may be in the middle of a step) or
    ``keep`` is false."""

    def __init__(self, model: Model, workers: Workers, controller: Any, keep: bool = False) -> None:
        self.model = model
        self.workers = workers
        self.parts = workers.parts
        self.keep = keep
        self._controller = controller  # threadpoolctl's: BLAS on one thread while the parts run
        self._waiting = [False] * (self.parts - 1)  # a worker that sent its array to sum and waits for the total
        self._finals: dict[int, tuple[dict, list[np.ndarray]]] = {}  # each worker's last message of the step

    def __enter__(self) -> ForkedSteps:
        for layer in self.model.layers:
            layer.replica_sum = self._sum
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None or not self.keep:
            self.workers.close()
        for layer in self.model.layers:
            vars(layer).pop("replica_sum", None)  # back to the class default: one process

    # -- the main process's side of a step ------------------------------------------------------------------
    def compute_gradients(self, x: Any, y: Any, sample_weight: np.ndarray | None = None) -> tuple[float, Any]:
        """``Model.compute_gradients`` of the whole batch, into ``model.flat.grads``: the loss and predictions."""
        model = self.model
        limits = bounds(count(x), self.parts)
        self.workers.params[...] = model.flat.params
        self.workers.state[...] = model.flat.state  # a frozen BatchNormalization's moving statistics
        for rank in range(1, self.parts):
            part = part_of(x, y, sample_weight, slice(limits[rank], limits[rank + 1]))
            forms, arrays = zip(*(flattened(value) for value in part), strict=True)
            self._exchange(rank, send, {"kind": "step", "forms": forms}, [a for group in arrays for a in group])
        finals = self._finals = {}
        failure: BaseException | None = None
        try:
            with self._controller.limit(limits=1, user_api="blas"):
                own = model.compute_gradients(*part_of(x, y, sample_weight, slice(limits[0], limits[1])))
        except BaseException as error:  # noqa: BLE001 - raised below, once every worker has ended its step
            failure = error
        self._finish_step(finals, abort=failure is not None)
        errors = [error_of(header) for header, _ in finals.values() if header["kind"] == "error"]
        if failure is not None and not isinstance(failure, _Aborted):
            raise failure
        if errors:
            raise errors[0]
        if failure is not None:  # a worker ended its step where this one expected a sum: a bug, named
            raise RuntimeError("the training processes went out of step: a worker finished while this process "
                               "waited for its BatchNormalization sums")
        results = [own, *((finals[rank][0]["loss"], rebuilt(finals[rank][0]["predictions"], finals[rank][1]))
                          for rank in range(1, self.parts))]
        loss_value = combine(model.flat.grads, self.workers.grads, [loss for loss, _ in results], limits)
        return loss_value, joined([y_pred for _, y_pred in results])

    def _finish_step(self, finals: dict[int, tuple[dict, list[np.ndarray]]], abort: bool) -> None:
        """Read every worker's last message of the step into ``finals``; if the step failed here, answer each
        worker's pending or coming sums with "abort" so that it ends its step too."""
        for rank in range(1, self.parts):
            while rank not in finals:
                if self._waiting[rank - 1] and abort:
                    self._exchange(rank, send, {"kind": "abort"})
                    self._waiting[rank - 1] = False
                header, arrays = self._exchange(rank, receive)
                if header["kind"] == "sum":
                    self._waiting[rank - 1] = True
                    abort = True  # a worker cannot be asking for a sum once this process's part ended well
                else:
                    finals[rank] = (header, arrays)

    def _sum(self, array: np.ndarray) -> np.ndarray:
        """This process's ``replica_sum``: ``array`` plus every worker's, in rank order, sent back to each."""
        total = array.copy()
        for rank in range(1, self.parts):
            header, arrays = self._exchange(rank, receive)
            if header["kind"] != "sum":  # the worker's step ended (an error): so does this one
                self._finals[rank] = (header, arrays)
                raise _Aborted
            self._waiting[rank - 1] = True
            total += arrays[0]
        for rank in range(1, self.parts):
            self._exchange(rank, send, {"kind": "total"}, [total])
            self._waiting[rank - 1] = False
        array[...] = total
        return array

    def _exchange(self, rank: int, action: Callable[..., Any], *args: Any) -> Any:
        """``action(connection, *args)`` on worker ``rank``'s pipe; a worker gone is a ``PartProcessError``."""
        try:
            return action(self.workers.connections[rank - 1], *args)
        except (EOFError, OSError) as error:
            process = self.workers.processes[rank - 1]
            process.join(STOP_SECONDS)
            raise PartProcessError(f"training process {rank} stopped in the middle of a step (exit code "
                                   f"{process.exitcode}); fit cannot go on without it") from error


# -- a worker's side -------------------------------------------------------------------------------------------
def _serve(model: Model, rank: int, connection: Connection, others: list[Connection], params: np.ndarray,
           state: np.ndarray, grads: np.ndarray, seeds: list[int], controller: Any) -> None:
    """A worker's life: compute the gradients of each part it is sent, restart its random streams at each new
    fit, until it is told to exit, its pipe closes, or ``IDLE_SECONDS`` pass without a message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    for other in others:  # the main process's pipe ends, copied by the fork: held here, no worker would see EOF
        other.close()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    random_streams.restart_all(model, seeds, rank)

    def replica_sum(array: np.ndarray) -> np.ndarray:
        send(connection, {"kind": "sum"}, [array])
        header, arrays = receive(connection)
        if header["kind"] != "total":
            raise _Aborted
        array[...] = arrays[0]
        return array

    for layer in model.layers:
        layer.replica_sum = replica_sum
    with contextlib.suppress(EOFError, OSError), controller.limit(limits=1, user_api="blas"):
        send(connection, {"kind": "ready"})
        while wait_readable(connection, IDLE_SECONDS):
            header, arrays = receive(connection)
            if header["kind"] == "exit":
                return
            if header["kind"] == "restart":  # a new fit
                random_streams.restart_all(model, header["seeds"], rank)
                send(connection, {"kind": "ready"})
                continue
            x, y, sample_weight = (rebuilt(form, arrays) for form in header["forms"])
            model.flat.params[...] = params
            model.flat.state[...] = state
            try:
                loss_value, y_pred = model.compute_gradients(x, y, sample_weight)
            except _Aborted:
                send(connection, {"kind": "aborted"})
                continue
            except Exception as error:  # noqa: BLE001 - reported to the main process, which raises it
                send(connection, {"kind": "error", "type": type(error).__name__, "message": str(error)})
                continue
            grads[...] = model.flat.grads
            form, predictions = flattened(y_pred)
            send(connection, {"kind": "done", "loss": float(loss_value), "predictions": form}, predictions)
