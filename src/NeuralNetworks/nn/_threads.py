"""How many BLAS threads a training or inference loop should use.

A matrix product of a small batch through a small layer finishes in microseconds; waking a second BLAS thread
and joining it costs more than it saves, and when another process is busy on the same cores the spinning
threads slow every product several-fold. Below ``SMALL_PRODUCT_MULTIPLY_ADDS`` the loop therefore runs BLAS on
one thread; larger products keep every core.

The BLAS thread count belongs to the process, not to a thread or a model, and ``limit`` saves it and restores it
around a loop: two threads doing that at once undo each other's limit (one may leave the process on one thread
for good). So only the main thread changes it; a loop in any other thread (a server's request handlers, say)
runs with whatever the process chose once, as ``app.run`` does for the whole server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

from .layers.base import Layer

SMALL_PRODUCT_MULTIPLY_ADDS = 1_000_000  # measured here: 16x784x64 is faster on 1 thread, 64x288x64 on 2
# Below this BLAS runs one thread by itself (1x784x64 takes 2.4 us on 1 or 2 threads) and switching the thread
# count would cost more than the products: classifying one image must stay in microseconds.
TINY_PRODUCT_MULTIPLY_ADDS = 100_000


def multiply_adds_per_sample(layers: Iterable[Layer]) -> int:
    """Multiply-adds of the biggest product one sample goes through.

    A layer may say how many it does per sample with ``multiply_adds_per_sample()``; otherwise its weight count
    is used, which is exact for Dense.
    """
    return max((int(getattr(layer, "multiply_adds_per_sample", layer.count_params)()) for layer in layers),
               default=0)


def wants_one_thread(largest_product: int) -> bool:
    """True when a batch's ``largest_product`` is small but not tiny: one BLAS thread is then the faster choice."""
    return TINY_PRODUCT_MULTIPLY_ADDS <= largest_product < SMALL_PRODUCT_MULTIPLY_ADDS


def blas_controller() -> object | None:
    """A ``threadpoolctl.ThreadpoolController``, or None without threadpoolctl (BLAS keeps its thread count).

    Keep it: limiting through it costs about 5 us, where ``threadpool_limits()`` costs 400 us or more because
    it searches the loaded libraries every time.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


class BlasThreads:
    """The rule above for one model: ``limit(batch_size)`` is the context its training or inference loop runs in.

    ``product_per_sample`` is set when the model's layers change; the threadpoolctl controller is made on first
    need (it costs ~0.4 ms) and kept.
    """

    def __init__(self) -> None:
        self.product_per_sample = 0
        self._controller: object | None = None

    def limit(self, batch_size: int) -> contextlib.AbstractContextManager:
        """One BLAS thread while a batch's products are small, in the main thread only (see the module)."""
        if threading.current_thread() is not threading.main_thread():
            return contextlib.nullcontext()
        if not wants_one_thread(batch_size * self.product_per_sample):
            return contextlib.nullcontext()
        if self._controller is None:
            self._controller = blas_controller()
        if self._controller is None:
            return contextlib.nullcontext()
        return self._controller.limit(limits=1, user_api="blas")


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread for the whole process while the context lasts (a server, whose concurrent requests use
    the other cores); a null context without threadpoolctl."""
    controller = blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
