"""Data-parallel training over several processes, by default on MPI.

Started with ``mpiexec -n N`` (or ``srun``), ``model.fit(...)`` and ``NeuralNetworks train`` train synchronously
over the N processes: each computes its part of every global batch, gradients are averaged with one
``Allreduce`` of the contiguous buffer ``model.flat.grads`` per step, and every process takes the same step (see
``trainer.DataParallelTrainer``). A plain run never imports mpi4py; ``environment`` says how a launch is
recognised. The engine is a seam (``engine.Engine``): anything that can sum, broadcast and abort may replace MPI.
See docs/parallel.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine import Engine
from .environment import (
    ENGINE_VARIABLE,
    EngineChoiceError,
    is_parallel_job,
    is_root_process,
    launched_rank,
    launched_size,
)
from .trainer import DataParallelTrainer, JobInterrupted

if TYPE_CHECKING:
    from ..models import Model
    from ..training import Trainer


def engine_from_environment() -> Engine | None:
    """The MPI engine when this process is one of several started by an MPI launcher (or
    ``NEURALNETWORKS_ENGINE=mpi``), else None. Raises saying what to do when mpi4py is missing or disagrees
    with the launcher."""
    if not is_parallel_job():
        return None
    from .mpi import INSTALL_HINT, MPIEngine

    expected = launched_size()
    try:
        engine = MPIEngine()
    except ImportError as error:
        raise RuntimeError(f"this process is one of {expected} started by an MPI launcher, but {error}; or set "
                           f"{ENGINE_VARIABLE}=none to train independent copies") from None
    if engine.size == 1 and expected > 1:
        raise RuntimeError(f"the launcher started {expected} processes but MPI sees only this one: mpi4py uses "
                           f"another MPI library than the launcher (use the mpiexec of the same installation: "
                           f"{INSTALL_HINT})")
    return engine if engine.size > 1 else None


def trainer_for(model: Model) -> Trainer:
    """The trainer ``model.fit`` runs: data-parallel in a multi-process MPI job, else the one-process loop."""
    from ..training import Trainer

    engine = engine_from_environment()
    return Trainer(model) if engine is None else DataParallelTrainer(model, engine)


def end_job(message: str, status: int, *, together: bool = False) -> None:
    """In a multi-process job, print ``message`` and end every process (a process that merely exits would
    leave the others waiting for it forever); in one process, do nothing. With an unknown engine choice no
    process started one (each refused it alike), so none is waiting. ``together``: every process calls this
    (after ``JobInterrupted``), so each waits for the others first (rank 0 finishing its save)."""
    try:
        parallel = is_parallel_job()
    except EngineChoiceError:
        return
    if parallel:
        from .mpi import MPIEngine

        try:
            engine = MPIEngine()
        except ImportError:  # without mpi4py no process got as far as MPI: none is waiting
            return
        if together:
            import numpy as np

            engine.sum(np.zeros(1))
        engine.abort(message, status)


__all__ = ["DataParallelTrainer", "Engine", "ENGINE_VARIABLE", "EngineChoiceError", "JobInterrupted", "end_job",
           "engine_from_environment", "is_parallel_job", "is_root_process", "launched_rank", "launched_size",
           "trainer_for"]
