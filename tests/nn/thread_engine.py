"""An ``nn.parallel.Engine`` over threads of one process, for tests of the data-parallel trainer without MPI:
each thread is a "process" with its own model; sums and broadcasts meet at a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

BARRIER_TIMEOUT_SECONDS = 60


class Aborted(Exception):
    """What ``ThreadEngine.abort`` raises in the thread that aborted (the others see a broken barrier)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ThreadEngine:
    def __init__(self, rank: int, size: int, barrier: threading.Barrier, slots: list) -> None:
        self.rank, self.size, self._barrier, self._slots = rank, size, barrier, slots

    def _exchange(self, value: np.ndarray | None) -> list:
        self._slots[self.rank] = value
        self._barrier.wait()
        values = list(self._slots)
        self._barrier.wait()  # nobody overwrites a slot before every thread has read them all
        return values

    def sum(self, array: np.ndarray) -> np.ndarray:
        total = np.zeros_like(array)
        for part in self._exchange(array.copy()):  # the same order on every thread: the same result
            total += part
        array[...] = total
        return array

    def broadcast(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        array[...] = self._exchange(array.copy() if self.rank == root else None)[root]
        return array

    def abort(self, message: str, status: int) -> NoReturn:
        self._barrier.abort()
        raise Aborted(message, status)


def run_in_threads(size: int, work: Callable[[ThreadEngine], Any]) -> list:
    """``work(engine)`` on ``size`` threads at once; each thread's result, or the exception it raised."""
    barrier = threading.Barrier(size, timeout=BARRIER_TIMEOUT_SECONDS)
    slots: list = [None] * size
    results: list = [None] * size

    def run(rank: int) -> None:
        try:
            results[rank] = work(ThreadEngine(rank, size, barrier, slots))
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            results[rank] = error

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
