"""Teach's transfer learning on the shipped doodles model: which layers are frozen, that they stay as they were,
that the assembled model computes exactly head(features), and that a few digits are learned from few examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks import serving
from NeuralNetworks.app import registry, transfer
from NeuralNetworks.nn import layers, models

BASE = registry.SHIPPED_MODELS["doodles"]
MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"

pytestmark = pytest.mark.skipif(not BASE.is_file(), reason=f"{BASE} (the shipped doodles model) is absent")


@pytest.fixture(scope="module")
def base() -> transfer.FeatureBase:
    return transfer.FeatureBase(serving.load_model(BASE, "doodles"))


def squares(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    for image in images:
        top, left, size = rng.integers(2, 8), rng.integers(2, 8), rng.integers(12, 18)
        image[top:top + size, left:left + 2] = image[top:top + size, left + size - 2:left + size] = 255
        image[top:top + 2, left:left + size] = image[top + size - 2:top + size, left:left + size] = 255
    return images


def test_the_feature_layers_are_the_base_up_to_flatten_without_training_only_layers(base):
    names = [type(layer).__name__ for layer in base.extractor.layers]
    assert names[0] == "Rescaling" and names[-1] == "Flatten" and names.count("Conv2D") == 4
    assert not any(layer.identity_at_inference for layer in base.extractor.layers)  # no augmentation, no dropout
    assert base.feature_size == 2048
    features = base.features(squares(3))
    assert features.shape == (3, 1 + transfer.AUGMENTED_COPIES, 2048) and features.dtype == transfer.FEATURE_DTYPE
    assert not np.allclose(features[:, 0], features[:, 1], atol=1e-2)  # the copies are changed drawings
    original = base.served.model
    flatten = next(layer for layer in original.layers if type(layer).__name__ == "Flatten")
    x = squares(3).astype(np.float32)[..., None]
    for layer in original.layers[:original.layers.index(flatten) + 1]:
        x = layer.forward(x, training=False)
    np.testing.assert_allclose(features[:, 0], x, rtol=2e-3, atol=2e-3)  # the base's own features, in float16


def test_training_moves_only_the_head_and_the_model_computes_head_of_features(base):
    frozen = {key: value.copy() for key, value in base.extractor.get_named_weights().items()}
    images = np.concatenate([squares(4), np.rot90(squares(4, seed=1), axes=(1, 2))])
    rings = np.zeros((4, 28, 28), np.uint8)
    yy, xx = np.mgrid[:28, :28]
    for index, radius in enumerate((6, 8, 10, 11)):
        rings[index][np.abs(np.hypot(yy - 14, xx - 14) - radius) < 1.2] = 255
    images = np.concatenate([images, rings])
    targets = [0] * 8 + [1] * 4
    features = list(base.features(images))
    trained = base.train_head(features, targets, 2, deadline=float("inf"), seed=0)
    assert trained.epochs == transfer.EPOCHS and not trained.stopped_early and trained.accuracy == 1.0
    model = base.assemble(trained.head, ["square", "ring"])
    for key, value in frozen.items():
        np.testing.assert_array_equal(base.extractor.get_named_weights()[key], value)
        np.testing.assert_array_equal(model.get_named_weights()[key], value)
    assert [type(layer).__name__ for layer in model.layers[:3]] == ["RandomRotation", "RandomZoom",
                                                                     "RandomTranslation"]
    assert model.labels == {0: "square", 1: "ring"} and model.preprocessing == "quickdraw"
    x = images.astype(np.float32)[..., None]
    expected = trained.head.predict(np.stack(features)[:, 0].astype(np.float32))
    np.testing.assert_allclose(model.predict(x), expected, atol=2e-3)


def test_a_model_without_a_feature_layer_cannot_be_a_base():
    plain = models.Sequential([layers.Dense(4, input_shape=(784,)), layers.Dense(2, activation="softmax")])
    with pytest.raises(transfer.NotTeachableError, match="no Flatten or GlobalAveragePooling2D"):
        transfer.feature_cut(plain)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"{MNIST} is absent")
def test_three_digits_are_learned_from_ten_examples_each(base):
    from NeuralNetworks.data import load_mnist

    dataset = load_mnist(MNIST, test_only=True)
    digits, x, y = (1, 4, 8), dataset.x_test[..., 0], dataset.y_test
    chosen = {digit: np.flatnonzero(y == digit) for digit in digits}
    train = np.concatenate([chosen[digit][:10] for digit in digits])
    test = np.concatenate([chosen[digit][10:110] for digit in digits])
    targets = [digits.index(label) for label in y[train]]
    trained = base.train_head(list(base.features(x[train])), targets, 3, deadline=float("inf"), seed=0)
    model = base.assemble(trained.head, [str(digit) for digit in digits])
    guesses = model.predict(x[test].astype(np.float32)[..., None]).argmax(axis=1)
    accuracy = np.mean(np.asarray(digits)[guesses] == y[test])
    assert accuracy >= 0.9, accuracy
