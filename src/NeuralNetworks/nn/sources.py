"""What ``fit`` and ``evaluate`` read batch by batch: arrays in memory, or a ``SampleSource`` that keeps its
samples where they are (memory-mapped files, say) until a batch is asked for.

A ``SampleSource`` is the whole protocol a streamed dataset implements: its length, the shape of one sample,
and ``gather(index)``, the samples and labels at sorted positions. The training loop draws the epoch's order
itself (a ``RandomPermutation`` of ``range(len(source))`` evaluated batch by batch, so nothing of the size of
the dataset is ever held), gathers each batch in a background thread while the previous one computes, and
never asks for more than a few batches ahead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .._permutation import RandomPermutation
from ._structure import count, rows

if TYPE_CHECKING:
    from .models import Model

READ_AHEAD_SAMPLES = 2048  # a source is read this many samples (whole batches) at once: one shuffled-order lookup
# and one sorted read for all, so that each class file of a 345-class folder gives several rows per read
PREFETCH_CHUNKS = 2  # such chunks ready or being read while one computes: a few hundred KB, enough to hide a read

Batch = tuple[int, np.ndarray, np.ndarray]  # (samples in the whole batch, this process's x, this process's y)
Part = Callable[[np.ndarray], "np.ndarray | None"]


@runtime_checkable
class SampleSource(Protocol):
    """Samples read on demand, batch by batch: ``model.fit(source, epochs=...)``, ``validation_data=source``,
    ``model.evaluate(source)``.

    - ``len(source)``: the number of samples.
    - ``sample_shape``: the shape of one sample, e.g. ``(28, 28, 1)``.
    - ``gather(index)``: the samples at ``index`` (sorted int64 positions in ``[0, len)``) and their labels, as
      arrays of ``len(index)`` rows in the order of ``index``. It may be called from a background thread.
    """

    sample_shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def is_source(value: object) -> bool:
    # an array first: the protocol check costs 8 us, and predict asks it of every batch, one image included
    return not isinstance(value, np.ndarray) and isinstance(value, SampleSource)


class InOrder:
    """``range(n)`` sliced into arrays: the order of an unshuffled epoch or of an evaluation, never stored."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, max(start, stop)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, where: slice) -> np.ndarray:
        start, stop, _ = where.indices(len(self))
        return np.arange(self.start + start, self.start + stop, dtype=np.int64)


Order = np.ndarray | RandomPermutation | InOrder


class Samples:
    """A training or validation set as the loops see it: ``len``, an epoch ``order`` and ``gather``."""

    prefetch = False  # gather in a background thread (worth it when reading is slow, e.g. from disk)

    def __len__(self) -> int:
        raise NotImplementedError

    def order(self, rng: np.random.Generator | None) -> Order:
        """The positions of one epoch: shuffled with ``rng``, in order without it."""
        raise NotImplementedError

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class ArraySamples(Samples):
    """Prepared arrays ``x, y`` in memory (tuples of arrays for several inputs or outputs), or the rows
    ``index`` (sorted) of them."""

    def __init__(self, x: np.ndarray, y: np.ndarray, index: np.ndarray | None = None) -> None:
        self.x, self.y, self.index = x, y, index

    def __len__(self) -> int:
        return count(self.x) if self.index is None else len(self.index)

    def order(self, rng: np.random.Generator | None) -> Order:
        if rng is not None:  # permutation(n) == permutation(arange(n)): the same draw either way
            return rng.permutation(count(self.x) if self.index is None else self.index)
        return np.arange(count(self.x)) if self.index is None else self.index

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows(self.x, index), rows(self.y, index)


class SourceSamples(Samples):
    """A ``SampleSource`` whose batches are checked and converted by ``model.prepare_data`` as they arrive."""

    prefetch = True

    def __init__(self, source: SampleSource, model: Model) -> None:
        self.source, self.model = source, model

    def __len__(self) -> int:
        return len(self.source)

    def order(self, rng: np.random.Generator | None) -> Order:
        return RandomPermutation(len(self.source), rng) if rng is not None else InOrder(0, len(self.source))

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.source.gather(index)
        return self.model.prepare_data(x, y)


def batches(samples: Samples, order: Order, batch_size: int, part: Part | None = None) -> Iterator[Batch]:
    """``(batch samples, x, y)`` for each batch of ``batch_size`` positions of ``order`` (sorted within the
    batch, so reads go forward through memory or files). ``part(index)`` picks what this process computes of
    each batch (None: skip the batch); by default all of it.

    Arrays are gathered batch by batch. Sources are gathered about ``READ_AHEAD_SAMPLES`` at a time (whole
    batches, at least one), in one sorted read, by a background thread that keeps ``PREFETCH_CHUNKS`` such chunks
    ready or being read while the current one computes.
    """
    if not samples.prefetch:
        for start in range(0, len(order), batch_size):
            index = np.sort(order[start:start + batch_size])
            own = index if part is None else part(index)
            if own is not None:
                yield len(index), *samples.gather(own)
        return
    chunk = batch_size * max(1, READ_AHEAD_SAMPLES // batch_size)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    try:
        pending = deque(pool.submit(_read_chunk, samples, order[start:start + chunk], batch_size, part)
                        for start in range(0, min(len(order), PREFETCH_CHUNKS * chunk), chunk))
        next_start = PREFETCH_CHUNKS * chunk
        while pending:
            ready = pending.popleft().result()
            if next_start < len(order):
                pending.append(pool.submit(_read_chunk, samples, order[next_start:next_start + chunk], batch_size,
                                           part))
                next_start += chunk
            yield from ready
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_chunk(samples: Samples, positions: np.ndarray, batch_size: int, part: Part | None) -> list[Batch]:
    """The batches of ``positions`` (consecutive batches of an epoch's order), read in one sorted gather."""
    counts, owns = [], []
    for start in range(0, len(positions), batch_size):
        index = np.sort(positions[start:start + batch_size])
        own = index if part is None else part(index)
        if own is not None:
            counts.append(len(index))
            owns.append(own)
    if not owns:
        return []
    wanted = np.concatenate(owns)
    by_position = np.argsort(wanted, kind="stable")
    x_sorted, y_sorted = samples.gather(wanted[by_position])
    x, y = np.empty_like(x_sorted), np.empty_like(y_sorted)
    x[by_position], y[by_position] = x_sorted, y_sorted
    stops = np.cumsum([len(own) for own in owns])
    return [(count, x[stop - len(own):stop], y[stop - len(own):stop])
            for count, own, stop in zip(counts, owns, stops, strict=True)]
