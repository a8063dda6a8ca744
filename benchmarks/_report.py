"""What the benchmarks share to report: a Markdown table, and the thread count of NumPy's BLAS and PyTorch."""

from __future__ import annotations

import contextlib

from _contestants import HAS_TORCH


def set_threads(count: int) -> None:
    """Use ``count`` threads in NumPy's BLAS (through threadpoolctl) and in PyTorch."""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(count, user_api="blas")
    if HAS_TORCH:
        import torch

        torch.set_num_threads(count)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
