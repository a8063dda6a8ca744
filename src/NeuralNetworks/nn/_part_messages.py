"""Messages between the processes of a split training step (``forked_steps``): a JSON header, then the raw bytes
of each array (no pickle), over a ``multiprocessing`` pipe; and the shared memory the weights and gradients go
through.

A process waiting for a message first polls its pipe for ``SPIN_SECONDS`` before it sleeps in the kernel, as
OpenMP's threads spin before they block (``OMP_WAIT_POLICY``): the parts of a step meet a dozen times per step
(BatchNormalization's sums), usually within microseconds of each other, and waking a sleeping process costs
a round trip of about 150 us on a virtual machine. Measured on 2 cores (digits preset, batch 64): 8% more
samples/s than blocking at once.
"""

from __future__ import annotations

import builtins
import json
import math
import mmap
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

SPIN_SECONDS = 0.002  # how long a waiting process polls before it sleeps: a few BatchNormalization passes
HEADER_LENGTH_BYTES = 4


def wait_readable(connection: Connection, timeout: float | None = None) -> bool:
    """True once ``connection`` has a message: polled for ``SPIN_SECONDS``, then waited for up to ``timeout``
    seconds (None: for ever); False if none came."""
    if connection.poll():
        return True
    end = time.perf_counter() + SPIN_SECONDS
    while time.perf_counter() < end:
        if connection.poll():
            return True
    return connection.poll(timeout)


def send(connection: Connection, header: dict, arrays: Sequence[np.ndarray] = ()) -> None:
    """One message: the length of the JSON header, the header (with each array's dtype and shape), then the
    arrays' bytes, in a single write (a dozen messages cross per step: each write and read is a system call)."""
    contiguous = [np.ascontiguousarray(array) for array in arrays]
    if any(array.dtype.hasobject for array in contiguous):
        raise TypeError("a training part's arrays must be numbers, not Python objects")
    layouts = [[array.dtype.str, list(array.shape)] for array in contiguous]
    text = json.dumps({**header, "arrays": layouts}).encode()
    connection.send_bytes(b"".join([len(text).to_bytes(HEADER_LENGTH_BYTES, "little"), text,
                                    *(array.reshape(-1).view(np.uint8) for array in contiguous)]))


def receive(connection: Connection) -> tuple[dict, list[np.ndarray]]:
    """The next message: its header and its arrays (waiting as ``wait_readable`` does)."""
    wait_readable(connection)
    message = connection.recv_bytes()
    offset = HEADER_LENGTH_BYTES + int.from_bytes(message[:HEADER_LENGTH_BYTES], "little")
    header = json.loads(message[HEADER_LENGTH_BYTES:offset])
    arrays = []
    for dtype, shape in header.pop("arrays"):
        array = np.frombuffer(message, np.dtype(dtype), math.prod(shape), offset).reshape(shape).copy()
        offset += array.nbytes
        arrays.append(array)
    return header, arrays


def flattened(value: Any) -> tuple[Any, list[np.ndarray]]:
    """``value`` (None, an array, or a tuple or list of arrays) as a JSON-able form and its arrays."""
    if value is None:
        return None, []
    if isinstance(value, tuple | list):
        return [type(value).__name__, len(value)], [np.asarray(item) for item in value]
    return "array", [np.asarray(value)]


def rebuilt(form: Any, arrays: list[np.ndarray]) -> Any:
    """The value ``flattened`` took apart, taking its arrays from the front of ``arrays``."""
    if form is None:
        return None
    if form == "array":
        return arrays.pop(0)
    kind, length = form
    items = [arrays.pop(0) for _ in range(length)]
    return tuple(items) if kind == "tuple" else items


def shared_like(array: np.ndarray) -> np.ndarray:
    """A zeroed array of ``array``'s size and dtype in anonymous shared memory: forked workers see the same
    pages, and the memory goes with the last process holding it (nothing to clean up on disk)."""
    size = max(array.nbytes, 1)
    return np.frombuffer(mmap.mmap(-1, size), dtype=array.dtype, count=array.size)


def error_of(header: dict) -> BaseException:
    """A worker's reported error as an exception: a built-in exception type as itself, any other in words."""
    kind = getattr(builtins, header["type"], None)
    if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, OSError):
        return kind(header["message"])
    return RuntimeError(f"a training part failed with {header['type']}: {header['message']}")
