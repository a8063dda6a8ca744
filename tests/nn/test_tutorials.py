"""Every seed's own code runs: the doodle README, the XOR tutorial's custom tanh pair, the ``Net((2, 7, 7, 3, 1))``
notebook calling the network on an array, and Keras' get_weights / set_weights."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from nn_test_data import bars_dataset

from NeuralNetworks.nn import activations, gradcheck, layers, losses, models, optimizers


def test_doodle_readme_snippet_runs_verbatim(tmp_path, capsys):
    x_all, y_all = bars_dataset(n_per_class=200)
    x_train, y_train, x_test, y_test = x_all[:450], y_all[:450], x_all[450:], y_all[450:]
    data = SimpleNamespace(label_dict={0: "bicycle", 1: "cat", 2: "flower"})
    input_shape = (28, 28, 1)
    model_dir = str(tmp_path / "model")
    img = x_test[0]
    # --- the snippet, verbatim ---
    model = models.Sequential()
    model.add(layers.Flatten(input_shape=input_shape))
    model.add(layers.Dense(units=64, activation="Relu"))
    model.add(layers.Dense(units=16, activation="Relu"))
    model.add(layers.Dense(units=len(data.label_dict), activation="Softmax"))
    model.summary()
    model.compile(optimizer=optimizers.AdaGrad(learning_rate=0.01),
                  loss=losses.CategoricalCrossentropy())
    model.fit(x_train, y_train, epochs=10, batch_size=16, validation_data=(x_test, y_test))
    model.save(model_dir=model_dir, labels=data.label_dict)

    model = models.load(model_dir)
    results = model(data=img)   # img: one (28, 28, 1) image -> (label, {label: score, ...})
    print(results)
    # --- checks ---
    out = capsys.readouterr()
    assert "dense_3 (Dense)" in out.out and "(None, 3)" in out.out and "Total params: 51,331" in out.out
    assert "val_loss" in out.err  # the live progress bar
    label, scores = results
    assert label in scores
    assert set(scores) == {"bicycle", "cat", "flower"}
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(scores, key=scores.get) == label
    model.compile(optimizer="adam", loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    assert model.evaluate(x_test, y_test, return_dict=True)["accuracy"] >= 0.9


# -- the XOR tutorial: an activation layer made of two plain functions ----------------------------------------
def tanh(x):
    return np.tanh(x)


def tanh_prime(x):
    return 1 - np.tanh(x) ** 2


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def xor_network(activation_layer, seed=1):
    model = models.Sequential(seed=seed)
    model.add(layers.Dense(3, input_shape=(2,)))
    model.add(activation_layer())
    model.add(layers.Dense(1))
    model.add(activation_layer())
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=losses.MeanSquaredError())
    return model


def test_xor_trains_with_a_custom_tanh_pair():
    model = xor_network(lambda: layers.Activation(tanh, tanh_prime))
    history = model.fit(XOR_X, XOR_Y, epochs=1000, batch_size=1, verbose=0)
    assert history.history["loss"][-1] < 1e-3
    np.testing.assert_array_equal(model(XOR_X).round(), XOR_Y)
    # the same network with the built-in tanh learns the same function: the pair is the same derivative
    builtin = xor_network(lambda: layers.Activation("tanh"))
    builtin.fit(XOR_X, XOR_Y, epochs=1000, batch_size=1, verbose=0)
    np.testing.assert_allclose(model(XOR_X), builtin(XOR_X), atol=1e-4)


@pytest.mark.parametrize("make", [lambda: layers.Activation(tanh, tanh_prime),
                                  lambda: layers.Dense(3, activation=(tanh, tanh_prime)),
                                  lambda: layers.Dense(3, activation=activations.Elementwise(tanh, tanh_prime))],
                         ids=["activation-layer", "dense-pair", "dense-elementwise"])
def test_a_custom_pair_passes_the_gradient_check(make):
    result = gradcheck.check_layer(make(), (4,))
    assert result.passed, str(result)


def test_saving_a_custom_pair_says_why_not_and_what_to_do(tmp_path):
    model = xor_network(lambda: layers.Activation(tanh, tanh_prime))
    with pytest.raises(activations.NotSerializableError,
                       match=r"Cannot save the model to .*m\.npz: layer 'activation_1': the activation 'tanh' is a "
                             r"pair of Python functions.*model\.get_weights\(\)") as error:
        model.save(tmp_path / "m.npz")
    assert isinstance(error.value, TypeError)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_a_plain_function_without_its_derivative_is_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"'tanh' comes without its derivative: pass the pair \(function, derivative\)"):
        layers.Activation(tanh)


# -- the notebook: Net((2, 7, 7, 3, 1)) called on an array -----------------------------------------------------
def test_from_sizes_network_called_on_an_array_returns_the_outputs():
    net = models.Sequential.from_sizes((2, 7, 7, 3, 1), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    out = net(x)
    assert isinstance(out, np.ndarray) and out.shape == (10, 1)
    np.testing.assert_array_equal(out, net.predict(x))
    assert net([[0.5, -0.5]]).shape == (1, 1)  # a list of samples, as in the notebook


# -- Keras: get_weights / set_weights --------------------------------------------------------------------------
def test_keras_style_get_weights_and_set_weights():
    source = models.Sequential.from_sizes((2, 3, 1), seed=0)
    target = models.Sequential.from_sizes((2, 3, 1), seed=1)
    weights = source.get_weights()
    assert [w.shape for w in weights] == [(2, 3), (3,), (3, 1), (1,)]  # kernel, bias per Dense, in layer order
    target.set_weights(weights)
    x = np.random.default_rng(0).standard_normal((5, 2))
    np.testing.assert_array_equal(target(x), source(x))
    weights[0][...] = 0  # copies: the model keeps its own
    assert not np.array_equal(source.get_weights()[0], 0)
