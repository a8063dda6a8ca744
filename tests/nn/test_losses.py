"""Loss values against hand computations, and every gradient against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import activations, gradcheck, layers, losses

RNG = np.random.default_rng(0)
PROBS = activations.Softmax()(RNG.standard_normal((4, 3)))
ONE_HOT = np.eye(3)[[0, 2, 1, 2]]


def test_mse_is_the_real_mean_of_squares():
    y_true = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_pred = np.array([[1.0, 0.0], [0.0, 4.0]])
    assert losses.MeanSquaredError()(y_true, y_pred) == pytest.approx((0 + 4 + 9 + 0) / 4)


def test_mae_value():
    assert losses.MeanAbsoluteError()(np.array([[1.0], [3.0]]), np.array([[2.0], [0.0]])) == pytest.approx(2.0)


def test_binary_crossentropy_value():
    y_true, y_pred = np.array([[1.0], [0.0]]), np.array([[0.8], [0.4]])
    assert losses.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_categorical_crossentropy_value():
    y_pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y_true = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    assert losses.CategoricalCrossentropy()(y_true, y_pred) == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2)


def test_sparse_equals_one_hot_cross_entropy():
    labels = ONE_HOT.argmax(axis=1)
    assert losses.SparseCategoricalCrossentropy()(labels, PROBS) == pytest.approx(
        losses.CategoricalCrossentropy()(ONE_HOT, PROBS))
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy().gradient(labels, PROBS),
                               losses.CategoricalCrossentropy().gradient(ONE_HOT, PROBS))


@pytest.mark.parametrize(
    ("loss", "y_true", "y_pred"),
    [
        (losses.MeanSquaredError(), RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2))),
        (losses.MeanAbsoluteError(), RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2))),
        (losses.BinaryCrossentropy(), RNG.integers(0, 2, (4, 1)).astype(float), RNG.uniform(0.1, 0.9, (4, 1))),
        (losses.CategoricalCrossentropy(), ONE_HOT, PROBS),
        (losses.SparseCategoricalCrossentropy(), ONE_HOT.argmax(axis=1), PROBS),
        (losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, RNG.standard_normal((4, 3))),
        (losses.SparseCategoricalCrossentropy(from_logits=True), ONE_HOT.argmax(1), RNG.standard_normal((4, 3))),
    ],
    ids=["mse", "mae", "bce", "cce", "scce", "cce-logits", "scce-logits"],
)
def test_loss_gradients_match_finite_differences(loss, y_true, y_pred):
    result = gradcheck.check_loss(loss, y_true, y_pred)
    assert result.passed, str(result)


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(), losses.SparseCategoricalCrossentropy()])
def test_fused_softmax_gradient_equals_the_unfused_chain(loss):
    logits = RNG.standard_normal((4, 3))
    y_true = ONE_HOT if not loss.sparse_labels else ONE_HOT.argmax(axis=1)
    softmax = activations.Softmax()
    probs = softmax(logits)
    unfused = softmax.backward(probs, loss.gradient(y_true, probs))
    np.testing.assert_allclose(loss.logits_gradient(y_true, probs), unfused, atol=1e-12)


def test_fused_gradient_is_exact_for_targets_that_do_not_sum_to_one():
    logits = RNG.standard_normal((4, 3))
    multi_hot = np.array([[1.0, 1, 0], [0.5, 0, 0], [0, 0, 1], [0.2, 0.3, 0.1]])
    result = gradcheck.check_loss(losses.CategoricalCrossentropy(from_logits=True), multi_hot, logits)
    assert result.passed, str(result)


def test_softmax_cross_entropy_is_finite_for_logits_of_magnitude_1e4():
    layer = layers.Dense(3, activation="softmax")
    layer.build((2,), np.random.default_rng(0), np.dtype(np.float32))
    layer.params["kernel"][...] = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    x = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    probs = layer.forward(x, training=True)
    y_true = np.eye(3, dtype=np.float32)[[1, 1]]  # row 0 is confidently wrong, row 1 confidently right
    loss = losses.CategoricalCrossentropy()
    value = loss(y_true, probs)
    grad = layer.backward_preactivation(loss.logits_gradient(y_true, probs))
    assert value == pytest.approx(-np.log(losses.EPSILON) / 2, rel=1e-3)  # the clipped cost, finite
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(layer.grads["kernel"]))
    logits_loss = losses.CategoricalCrossentropy(from_logits=True)
    z = np.array([[1e4, -1e4, 0.0]])
    assert np.isfinite(logits_loss(np.array([[0.0, 1.0, 0.0]]), z))
    assert logits_loss(np.array([[0.0, 1.0, 0.0]]), z) == pytest.approx(2e4)


def test_unknown_loss_lists_known_ones():
    with pytest.raises(ValueError, match="Unknown loss 'hinge'.*MeanSquaredError"):
        losses.get("hinge")
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
