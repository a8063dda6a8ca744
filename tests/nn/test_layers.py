"""Every core layer through one check: build -> shapes -> forward/backward -> config round trip -> gradients."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import activations, gradcheck, layers, models

ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]

LAYER_CASES = [
    *[pytest.param(lambda a=a: layers.Dense(4, activation=a), (5,), id=f"dense-{a}") for a in ACTIVATIONS],
    pytest.param(lambda: layers.Dense(3, use_bias=False), (6,), id="dense-no-bias"),
    pytest.param(lambda: layers.Flatten(), (2, 3, 2), id="flatten"),
    pytest.param(lambda: layers.Reshape((3, -1)), (6,), id="reshape"),
    *[pytest.param(lambda a=a: layers.Activation(a), (4,), id=f"activation-{a}") for a in ACTIVATIONS],
    pytest.param(lambda: layers.Rescaling(0.5, offset=1.0), (3,), id="rescaling"),
]


@pytest.mark.parametrize(("make_layer", "input_shape"), LAYER_CASES)
def test_layer_contract_and_gradients(make_layer, input_shape):
    layer = make_layer()
    layer.name = "under_test"
    output_shape = layer.build(input_shape, np.random.default_rng(0), np.dtype(np.float64))
    x = np.random.default_rng(1).standard_normal((3, *input_shape))
    y = layer.forward(x, training=True)
    assert y.shape == (3, *output_shape)
    grad_in = layer.backward(np.ones_like(y))
    assert grad_in.shape == x.shape
    assert set(layer.grads) == set(layer.params)

    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()

    result = gradcheck.check_layer(layer, input_shape, x=x)
    assert result.passed, str(result)


def test_gradcheck_catches_a_wrong_backward():
    class BrokenSquare(layers.Layer):
        def forward(self, x, training=False):
            self._x = x
            return x * x

        def backward(self, grad_output):
            return grad_output * self._x  # should be 2 * x

    result = gradcheck.check_layer(BrokenSquare(name="broken"), (4,))
    assert not result.passed
    assert result.errors["input"] > 0.1


def test_dropout_is_identity_in_inference_and_masks_consistently_in_training():
    layer = layers.Dropout(0.5, seed=3)
    layer.build((1000,), np.random.default_rng(0), np.dtype(np.float32))
    x = np.ones((4, 1000), dtype=np.float32)
    assert np.array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    zeroed = y == 0
    assert 0.4 < zeroed.mean() < 0.6
    np.testing.assert_allclose(y[~zeroed], 2.0)  # inverted dropout keeps the expected value
    grad = layer.backward(np.ones_like(x))
    assert np.array_equal(grad == 0, zeroed)
    assert gradcheck.check_layer(layers.Dropout(0.3), (5,), training=False).passed


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    y = activations.get("softmax")(z)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        y = activations.get("sigmoid")(np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("name", ["Relu", "relu", "ReLU", "RELU"])
def test_activation_names_are_case_insensitive(name):
    assert isinstance(activations.get(name), activations.ReLU)


@pytest.mark.parametrize("name", ["leaky_relu", "LeakyReLU", "Leaky_ReLU"])
def test_leaky_relu_names(name):
    assert isinstance(activations.get(name), activations.LeakyReLU)


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown activation 'rleu'\. Expected one of: linear, relu"):
        layers.Dense(3, activation="rleu")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: layers.Dense(-3), r"Dense expects a positive integer `units`. Received: units=-3"),
        (lambda: layers.Dense(2.5), r"units=2.5"),
        (lambda: layers.Dense(3, initializer="nope"), r"Unknown initializer 'nope'"),
        (lambda: layers.Dropout(1.5), r"Dropout expects `rate` in \[0.0, 1.0\)"),
        (lambda: layers.Reshape((2, -1, -1)), r"at most one -1"),
        (lambda: layers.Flatten(input_shape=(0, 3)), r"input_shape"),
    ],
)
def test_bad_layer_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_shape_mismatch_fails_at_add_naming_both_layers_and_shapes():
    model = models.Sequential()
    model.add(layers.Flatten(input_shape=(28, 28, 1)))
    model.add(layers.Reshape((28, 28)))
    with pytest.raises(ValueError, match=r"Cannot add dense_1 after reshape_1 \(output shape \(28, 28\)\)"):
        model.add(layers.Dense(4))
    with pytest.raises(ValueError, match=r"Cannot add reshape_2 after reshape_1 .*\(10, 10\)"):
        model.add(layers.Reshape((10, 10)))


def test_initializer_defaults_follow_the_activation():
    assert layers.Dense(3, activation="relu").initializer == "he_normal"
    assert layers.Dense(3, activation="tanh").initializer == "glorot_uniform"
    assert layers.Dense(3, activation="relu", initializer="zeros").initializer == "zeros"


def test_every_layer_has_one_backward_signature():
    import inspect

    for name, cls in layers.REGISTRY.items():
        parameters = list(inspect.signature(cls.backward).parameters)
        assert parameters[:3] == ["self", "grad_output", "input_gradient"], name


def test_add_weight_makes_the_weight_and_its_zero_gradient():
    class Affine(layers.Layer):
        def build(self, input_shape, rng, dtype):
            shape = super().build(input_shape, rng, dtype)
            self.add_weight("kernel", (input_shape[0], 3), "glorot_uniform", rng=rng)
            self.add_weight("count", (1,), "zeros", trainable=False)
            return shape

    layer = Affine(name="affine")
    layer.build((4,), np.random.default_rng(0), np.dtype(np.float32))
    assert layer.params["kernel"].shape == (4, 3) and layer.params["kernel"].dtype == np.float32
    assert np.array_equal(layer.grads["kernel"], np.zeros((4, 3))) and set(layer.state) == {"count"}
    limit = np.sqrt(6 / (4 + 3))  # glorot_uniform with the fans of a (4, 3) kernel
    assert np.abs(layer.params["kernel"]).max() <= limit
    with pytest.raises(ValueError, match="already has a weight named 'kernel'"):
        layer.add_weight("kernel", (1,))
    with pytest.raises(ValueError, match="draws random numbers: pass the rng"):
        layer.add_weight("other", (1,), "he_normal")
    with pytest.raises(RuntimeError, match=r"belongs in build\(\)"):
        Affine().add_weight("kernel", (1,))


def test_a_seeded_dense_draws_the_same_kernel_through_add_weight():
    from NeuralNetworks.nn import initializers

    layer = layers.Dense(5, activation="relu")
    layer.build((7,), np.random.default_rng(3), np.dtype(np.float64))
    expected = initializers.he_normal((7, 5), 7, 5, np.random.default_rng(3), np.float64)
    np.testing.assert_array_equal(layer.params["kernel"], expected)
