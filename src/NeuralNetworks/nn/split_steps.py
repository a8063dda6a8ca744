"""Training steps split over the cores: when ``fit`` cuts each batch into parts computed at once, and by what.

BLAS spreads one matrix product over the cores, but a convolutional network's step is more than its products:
im2col copies, Winograd transforms, pooling, BatchNormalization and activations are NumPy passes that run on
one core, and the products of a 64-image batch are too small for two BLAS threads to pay off. So, when the step
is big enough, ``fit`` cuts each batch into one contiguous part per core, computes every part's gradients at
once with BLAS on one thread per part, and sums them by each part's share of the batch:

- on Linux, for a ``fit`` of ``MIN_FORKED_STEPS`` steps or more, or a model's second split fit and later ones,
  in worker processes (``forked_steps``), which the model keeps for its next fits: no GIL between the NumPy
  calls and no barrier in Python;
- otherwise, or when the process already runs other Python threads (a fork copies their locks, held or not),
  in threads over replicas of the model (``threaded_steps``).

Either way the step is the one-process step up to float32 rounding: BatchNormalization computes the statistics
of the whole batch through ``Layer.replica_sum``, the optimizer steps the model once from the summed gradients,
and only Dropout masks and augmentations differ (each part draws from its own streams, seeded from the model's:
a seeded model still trains reproducibly for a given number of cores).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import layers
from ._threads import blas_controller
from .forked_steps import ForkedSteps, StartError, Workers
from .threaded_steps import ThreadedSteps

if TYPE_CHECKING:
    from .models import Model

# Multiply-adds (forward pass) of one part below which a split costs more than it saves: the handoff between
# the parts, the exchanges of BatchNormalization and BLAS on one thread per part. Measured on 2 cores
# (benchmarks/split_steps.py): the default CNN (3.9M per sample) trains 1.7-2.0x as fast as on one thread
# at 32 images per part; the 784-512-256-10 MLP (0.5M per sample) half as fast as with BLAS alone at 64.
MIN_PART_MULTIPLY_ADDS = 50_000_000

# Steps of a first fit from which forking workers pays within that fit. Measured on 2 cores with the shipped
# CNNs (batch 64, benchmarks/split_steps.py): over a 200-step fit processes trained 2-13% faster than threads,
# over a 20-step one 3-7% slower: the first step after the fork costs 70-100 ms more than a step once running
# (every page either process writes faults once after the fork: 16,000 each for the digits preset). A model
# fitted again forks whatever the length of its fit: its workers then serve every later fit at no such cost
# (7-11% more samples/s than threads over 44-step fits of the shipped CNNs).
MIN_FORKED_STEPS = 200

SplitSteps = ForkedSteps | ThreadedSteps


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
    """True when every layer is a built-in one, whose part of the step depends on nothing but its weights,
    its input and ``replica_sum`` (a layer of one's own may keep batch statistics of its own, or other state)."""
    return all(type(layer) in layers.BUILT_IN or isinstance(layer, layers.InputLayer) for layer in model.layers)


def forking_allowed() -> bool:
    """True where the parts may run in forked processes: Linux (elsewhere fork is missing or unsafe with the
    system's libraries), no other Python thread (its locks would be copied as they are), not inside a daemonic
    process (which may not have children) and not in a process that started MPI (Open MPI does not support a
    fork after ``MPI_Init``)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1 and not multiprocessing.current_process().daemon
            and not _mpi_started())


def _mpi_started() -> bool:
    mpi = sys.modules.get("mpi4py.MPI")  # never imported here: only asked if the program did
    return mpi is not None and bool(mpi.Is_initialized())


@contextlib.contextmanager
def split_steps(model: Model, batch_size: int, steps: int) -> Iterator[SplitSteps | None]:
    """The context the ``steps`` steps of ``fit``'s epochs run in: the batches split over the cores when a step
    is big enough (BLAS then on one thread per part), else None under the model's own BLAS thread choice. Only
    the main thread splits, since only it may change BLAS's thread count (see ``_threads``)."""
    controller = blas_controller() if threading.current_thread() is threading.main_thread() else None
    cores = min(available_cores(), blas_threads(controller)) if controller is not None else 1
    parts = part_count(model, batch_size, cores) if cores > 1 and replicable(model) else 1
    with model.blas_threads(batch_size):
        if parts == 1:
            yield None
            return
        workers = _workers(model, parts, steps, controller)
        if workers is None:
            with ThreadedSteps(model, parts, controller) as split:
                yield split
            return
        model.step_workers, model.step_replicas = workers, None  # kept for the next fit; replicas not needed
        try:
            with ForkedSteps(model, workers, controller, keep=True) as split:
                yield split
        except BaseException:  # the workers were stopped (they may have been in the middle of a step)
            model.step_workers = None
            raise


def _workers(model: Model, parts: int, steps: int, controller: Any) -> Workers | None:
    """The worker processes this fit runs in: the ones the model kept from its last fit if they can serve it
    (``Workers.take_up``), else new ones when forking is allowed and pays: for a fit of ``MIN_FORKED_STEPS``
    steps or more, or a model that already split a fit over threads (fitted again, it pays the fork once for
    its next fits); None for threads."""
    kept = model.step_workers
    if kept is not None:
        if kept.take_up(model, parts):
            return kept
        kept.close()
        model.step_workers = None
    if not forking_allowed() or (steps < MIN_FORKED_STEPS and model.step_replicas is None):
        return None
    with contextlib.suppress(StartError):  # the processes did not start: threads instead
        return Workers(model, parts, controller)
    return None
