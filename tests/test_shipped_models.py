"""The two models the app ships: their published accuracy on data they never saw, their size, and what they hold.

The figures are the README's; a retrained file that falls short of them fails here rather than shipping.
"""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks import serving
from NeuralNetworks.app import registry
from NeuralNetworks.data import load
from NeuralNetworks.nn import layers

# (dataset, published test accuracy): the official MNIST test set, and the held-back 20% of the ten classes
PUBLISHED_ACCURACY = {"digits": 0.994, "doodles": 0.95}
MAX_FILE_BYTES = 2 * 10**6  # what the app loads at start-up, and what a deployment carries


@pytest.fixture(params=sorted(registry.SHIPPED_MODELS))
def shipped(request) -> serving.ServedModel:
    path = registry.SHIPPED_MODELS[request.param]
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    return serving.load_model(path)


def test_each_shipped_model_reaches_its_published_accuracy(shipped, mnist_dir, quickdraw_dir):
    if shipped.name == "digits":
        data = load("mnist", data_dir=mnist_dir, test_only=True)
    else:  # the split `NeuralNetworks train --dataset quickdraw` makes, seed 0
        data = load("quickdraw", data_dir=quickdraw_dir, classes=shipped.labels, seed=0, test_only=True)
    accuracy = np.mean(shipped.model.predict(data.x_test).argmax(axis=1) == data.y_test)
    assert accuracy >= PUBLISHED_ACCURACY[shipped.name], f"{shipped.name}: {accuracy:.2%}"


def test_shipped_models_are_small_augmented_and_carry_their_style(shipped):
    assert shipped.path.stat().st_size < MAX_FILE_BYTES
    assert any(isinstance(layer, layers.RandomImageLayer) for layer in shipped.model.layers)
    assert shipped.style == {"digits": "mnist", "doodles": "quickdraw"}[shipped.name]
    # augmentation is gone at inference: the same drawing gives the same scores every time
    bitmap = np.zeros((28, 28), np.uint8)
    bitmap[8:20, 12:16] = 255
    assert shipped.top_k(bitmap, k=10) == shipped.top_k(bitmap, k=10)
