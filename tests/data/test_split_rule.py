"""One split rule for QuickDraw loaded in memory and streamed from disk: a model trained one way and tested the
other is never tested on a drawing it trained on (the two used to draw their test rows differently)."""

from __future__ import annotations

import numpy as np

from NeuralNetworks import data


def rows_of(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images.reshape(len(images), -1)}


def test_the_streamed_and_the_loaded_test_splits_are_the_same_drawings(quickdraw_dir):
    classes = data.list_classes(quickdraw_dir)[:3]
    for seed in (0, 5):
        loaded = data.load("quickdraw", quickdraw_dir, classes=classes, max_per_class=300, seed=seed)
        streamed = data.stream("quickdraw", quickdraw_dir, classes=classes, max_per_class=300, seed=seed)
        test_images, test_labels = streamed.test.gather(np.arange(len(streamed.test)))
        assert len(test_labels) == len(loaded.y_test) == 3 * 60
        assert rows_of(test_images) == rows_of(loaded.x_test)
        streamed_train, _ = streamed.train.gather(np.arange(len(streamed.train)))
        assert not rows_of(streamed_train) & rows_of(loaded.x_test)
        assert not rows_of(loaded.x_train) & rows_of(test_images)
