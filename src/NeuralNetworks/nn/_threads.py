"""How many BLAS threads a training or inference loop should use.

A matrix product of a small batch through a small layer finishes in microseconds; waking a second BLAS thread
and joining it costs more than it saves, and when another process is busy on the same cores the spinning
threads slow every product several-fold. Below ``SMALL_PRODUCT_MULTIPLY_ADDS`` the loop therefore runs BLAS on
one thread; larger products keep every core.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from .layers.base import Layer

SMALL_PRODUCT_MULTIPLY_ADDS = 1_000_000  # measured here: 16x784x64 is faster on 1 thread, 64x288x64 on 2
# Below this BLAS runs one thread by itself (1x784x64 takes 2.4 us on 1 or 2 threads) and switching the thread
# count would cost more than the products: classifying one image must stay in microseconds.
TINY_PRODUCT_MULTIPLY_ADDS = 100_000


def largest_product(layers: Iterable[Layer], batch_size: int) -> int:
    """Multiply-adds of the biggest per-batch product.

    A layer may say how many it does per sample with ``multiply_adds_per_sample()``; otherwise its weight count
    is used, which is exact for Dense.
    """
    per_sample = [int(getattr(layer, "multiply_adds_per_sample", layer.count_params)()) for layer in layers]
    return batch_size * max(per_sample, default=0)


def blas_threads_for(largest: int, controller: object | None) -> contextlib.AbstractContextManager:
    """A context that limits BLAS to one thread when the ``largest`` product of a batch is small but not tiny.

    ``controller`` is a ``threadpoolctl.ThreadpoolController`` kept by the caller: limiting through it costs
    about 5 us, where ``threadpool_limits()`` costs 400 us or more because it searches the loaded libraries.
    """
    if controller is None or not TINY_PRODUCT_MULTIPLY_ADDS <= largest < SMALL_PRODUCT_MULTIPLY_ADDS:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def blas_controller() -> object | None:
    """A ``threadpoolctl.ThreadpoolController``, or None without threadpoolctl (BLAS keeps its thread count)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()
