"""Shared fixtures: the real datasets beside the checkout (``../shared/data``), skipped cleanly when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(subfolder: str) -> Path:
    path = SHARED_DATA / subfolder
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent")
    return path


@pytest.fixture
def mnist_dir() -> Path:
    """``../shared/data/mnist`` (the four official IDX .gz files)."""
    return _shared("mnist")


@pytest.fixture
def quickdraw_dir() -> Path:
    """``../shared/data/quickdraw`` (one ``<class>.npy`` numpy_bitmap file per class)."""
    return _shared("quickdraw")


@pytest.fixture
def fashion_mnist_dir() -> Path:
    """``../shared/data/fashion-mnist`` (the official t10k IDX files only)."""
    return _shared("fashion-mnist")
