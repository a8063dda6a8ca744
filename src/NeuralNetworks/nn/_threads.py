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


def largest_product(layers: Iterable[Layer], batch_size: int) -> int:
    """Multiply-adds of the biggest per-batch product.

    A layer may say how many it does per sample with ``multiply_adds_per_sample()``; otherwise its weight count
    is used, which is exact for Dense.
    """
    per_sample = [int(getattr(layer, "multiply_adds_per_sample", layer.count_params)()) for layer in layers]
    return batch_size * max(per_sample, default=0)


def blas_threads_for(layers: Iterable[Layer], batch_size: int) -> contextlib.AbstractContextManager:
    """A context that limits BLAS to one thread when every product of this batch size is small."""
    layers = list(layers)
    if largest_product(layers, batch_size) >= SMALL_PRODUCT_MULTIPLY_ADDS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own thread count
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
