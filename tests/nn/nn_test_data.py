"""Small synthetic datasets the nn tests share."""

from __future__ import annotations

import numpy as np


def bars_dataset(n_per_class: int = 60, seed: int = 0):
    """Three classes of 28x28x1 images (horizontal bar, vertical bar, diagonal) with noise, one-hot labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            image = rng.uniform(0, 0.2, (28, 28)).astype(np.float32)
            k = rng.integers(6, 22)
            if label == 0:
                image[k - 1:k + 2, 4:24] = 1.0
            elif label == 1:
                image[4:24, k - 1:k + 2] = 1.0
            else:
                idx = np.arange(4, 24)
                image[idx, idx] = 1.0
                image[idx[:-1], idx[1:]] = 1.0
            images.append(image[..., None])
            labels.append(label)
    x, y = np.stack(images), np.eye(3, dtype=np.float32)[labels]
    order = rng.permutation(len(x))
    return x[order], y[order]
