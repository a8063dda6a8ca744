"""Figures the command line writes: training curves, a confusion matrix and a grid of sample predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

SAMPLE_GRID_COLUMNS = 8
FIGURE_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=FIGURE_DPI)
    _pyplot().close(figure)
    return path


def training_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss (left) and accuracy (right, if logged) per epoch, training and validation."""
    plt = _pyplot()
    metrics = [name for name in ("loss", "accuracy") if name in history]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for axis, name in zip(axes[0], metrics, strict=True):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="training")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    return _save(figure, path)


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: str | Path) -> Path:
    """Counts of true (rows) against predicted (columns) classes, annotated."""
    plt = _pyplot()
    size = max(4.0, 0.55 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center", fontsize=8,
                  color="white" if count > threshold else "black")
    axis.set_title("Confusion matrix")
    return _save(figure, path)


def sample_predictions(images: np.ndarray, true_labels: Sequence[str], predicted_labels: Sequence[str],
                       path: str | Path) -> Path:
    """A grid of images titled with their prediction; misclassified ones in red with the true label."""
    plt = _pyplot()
    rows = -(-len(images) // SAMPLE_GRID_COLUMNS)
    figure, axes = plt.subplots(rows, SAMPLE_GRID_COLUMNS, figsize=(1.6 * SAMPLE_GRID_COLUMNS, 1.8 * rows),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, truth, guess in zip(axes.ravel(), images, true_labels, predicted_labels, strict=False):
        axis.imshow(np.asarray(image).squeeze(), cmap="gray")
        wrong = truth != guess
        axis.set_title(f"✗ {guess}\n(true: {truth})" if wrong else guess, fontsize=8,
                       color="red" if wrong else "black")
    return _save(figure, path)
