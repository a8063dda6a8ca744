"""The MPI engine: the collectives of ``DataParallelTrainer`` on an mpi4py communicator.

mpi4py (and an MPI library, e.g. the ``mpich`` wheel) come with ``pip install "neural-networks[mpi]"``;
importing this module does not import mpi4py, creating an ``MPIEngine`` does (and initialises MPI).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NoReturn

import numpy as np

INSTALL_HINT = 'pip install "neural-networks[mpi]" (mpi4py and the mpich wheel)'
# MPI_Abort tears the job down at once, output the launcher has not forwarded yet included: give it this long to
# forward the message first.
ABORT_GRACE_SECONDS = 0.5


def import_mpi() -> Any:
    """``mpi4py.MPI``, or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"data-parallel training needs mpi4py and an MPI library: {INSTALL_HINT} "
                          f"({error})") from None
    return MPI


class MPIEngine:
    """Sum, broadcast and abort over an MPI communicator (``MPI.COMM_WORLD`` by default).

    ``sum`` is one ``Allreduce`` in place: the array is sent as it is, so it must be contiguous (the model's
    gradient buffer ``model.flat.grads`` is).
    """

    def __init__(self, communicator: Any = None) -> None:
        self._mpi = import_mpi()
        self.communicator = self._mpi.COMM_WORLD if communicator is None else communicator
        self.rank = self.communicator.Get_rank()
        self.size = self.communicator.Get_size()

    def sum(self, array: np.ndarray) -> np.ndarray:
        _check_contiguous(array)
        self.communicator.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        return array

    def broadcast(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        _check_contiguous(array)
        self.communicator.Bcast(array, root=root)
        return array

    def abort(self, message: str, status: int) -> NoReturn:
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        self.communicator.Abort(status)
        os._exit(status)  # Abort ends every process; should it return (the job already going down), end this one

    def __repr__(self) -> str:
        return f"MPIEngine(rank={self.rank}, size={self.size}, {self._mpi.Get_library_version().splitlines()[0]})"


def _check_contiguous(array: np.ndarray) -> None:
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise ValueError("MPIEngine sends arrays as they are in memory: pass a C-contiguous NumPy array")
