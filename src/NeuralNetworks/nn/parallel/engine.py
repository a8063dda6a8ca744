"""The engine seam: the three collective operations ``DataParallelTrainer`` needs from a group of processes.

MPI provides them (``mpi.MPIEngine``); another engine (Ray's collective groups, torch.distributed, threads in
one process for tests) only has to implement this protocol, without touching layers or optimizers.
"""

from __future__ import annotations

from typing import NoReturn, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Engine(Protocol):
    """A group of ``size`` processes running the same program; this one is number ``rank`` (0 prints and saves).

    Every process must call the same collectives in the same order with arrays of the same shape and dtype.
    """

    rank: int
    size: int

    def sum(self, array: np.ndarray) -> np.ndarray:
        """Replace the contiguous ``array`` in place by its element-wise sum over all processes; return it.
        Every process must receive the same result (MPI's Allreduce does)."""
        ...

    def broadcast(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Replace the contiguous ``array`` in place by ``root``'s; return it."""
        ...

    def abort(self, message: str, status: int) -> NoReturn:
        """Print ``message`` and end every process of the job now with exit ``status`` (within seconds)."""
        ...
