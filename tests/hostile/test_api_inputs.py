"""Out-of-domain arguments to the Keras-style API: each raises a ValueError/TypeError naming the argument, what
was expected and what was received, before any computation; never a NumPy error from inside or a silent default."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import callbacks, layers, models, optimizers


@pytest.fixture
def model():
    network = models.Sequential(seed=0)
    network.add(layers.Flatten(input_shape=(4, 2)))
    network.add(layers.Dense(3, activation="softmax"))
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return network


X = np.random.default_rng(0).standard_normal((10, 4, 2)).astype(np.float32)
Y = np.arange(10) % 3


@pytest.mark.parametrize(("x", "error", "message"), [
    (np.full((2, 4, 2), np.nan), ValueError, r"`x` contains NaN or infinite values"),
    (np.full((2, 4, 2), np.inf), ValueError, r"NaN or infinite"),
    (np.zeros((2, 4, 2), np.complex64) + 1j, TypeError, r"`x` must be a numeric array. Received complex numbers"),
    (np.array([[1, "a"]], dtype=object), TypeError, r"numeric array. Received an array of dtype object"),
    ([[[1, 2]] * 4, [[1, 2]] * 3], ValueError, r"`x` must be a rectangular array of numbers"),
    (np.zeros((0, 4, 2)), ValueError, r"`x` must hold at least one sample. Received an empty batch of shape \(0, 4, 2\)"),
    (np.zeros((2, 4, 3)), ValueError, r"samples of shape \(4, 2\)"),
    (5.0, ValueError, r"Received a scalar"),
    ("abc", TypeError, r"numeric array"),
    (None, TypeError, r"numeric array|Call the model on a batch"),
], ids=["nan", "inf", "complex", "object", "ragged", "empty", "wrong-shape", "scalar", "string", "none"])
def test_bad_inputs_are_named_everywhere(model, x, error, message):
    for call in (model.predict, model, lambda v: model(v, training=True), lambda v: model.fit(v, Y[:2], verbose=0),
                 lambda v: model.evaluate(v, Y[:2])):
        with pytest.raises(error, match=message):
            call(x)


@pytest.mark.parametrize("data", [np.full((4, 2), np.nan), np.zeros((0, 4, 2)), np.zeros((4, 2), complex),
                                  [[1, 2], [3]]], ids=["nan", "empty", "complex", "ragged"])
def test_classifying_bad_data_is_named(model, data):
    with pytest.raises((ValueError, TypeError), match=r"`(x|data)`"):
        model(data=data)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "2", np.nan])
def test_batch_sizes_must_be_positive_integers(model, batch_size):
    for call in (lambda: model.predict(X, batch_size=batch_size), lambda: model.evaluate(X, Y, batch_size=batch_size),
                 lambda: model.fit(X, Y, batch_size=batch_size, verbose=0)):
        with pytest.raises(ValueError, match=r"expects a positive integer `batch_size`"):
            call()


@pytest.mark.parametrize("epochs", [0, -1, 2.5, "3", None])
def test_epochs_must_be_a_positive_integer(model, epochs):
    with pytest.raises(ValueError, match=r"fit expects a positive integer `epochs`"):
        model.fit(X, Y, epochs=epochs, verbose=0)


@pytest.mark.parametrize(("validation", "error", "message"), [
    ({"validation_data": (X,)}, ValueError, r"`validation_data` must be a tuple \(x_val, y_val\)"),
    ({"validation_data": "abc"}, ValueError, r"must be a tuple"),
    ({"validation_data": (X, Y[:3])}, ValueError, r"validation_data labels"),
    ({"validation_data": (None, None)}, TypeError, r"`validation_data` must be a numeric array"),
    ({"validation_data": (X, np.full(10, np.nan))}, ValueError, r"NaN or infinite"),
    ({"validation_split": 1.0}, ValueError, r"`validation_split` in \[0.0, 1.0\)"),
    ({"validation_split": np.nan}, TypeError, r"validation_split"),
    ({"callbacks": ["not a callback"]}, TypeError, r"`callbacks` to be a list of Callback instances"),
    ({"callbacks": callbacks.History()}, TypeError, r"`callbacks` to be a list"),
    ({"verbose": 7}, ValueError, r"`verbose` to be 0 \(silent\), 1 \(progress bar\) or 2"),
    ({"verbose": "yes"}, ValueError, r"`verbose`"),
    ({"shuffle": "no"}, TypeError, r"`shuffle` to be True or False"),
], ids=["one-element", "string", "short-labels", "none", "nan-labels", "split-1", "split-nan", "not-callbacks",
        "single-callback", "verbose-7", "verbose-string", "shuffle-string"])
def test_fit_options_are_checked(model, validation, error, message):
    with pytest.raises(error, match=message):
        model.fit(X, Y, **{"verbose": 0, **validation})


def test_compile_and_save_arguments(model, tmp_path):
    with pytest.raises(TypeError, match=r"`metrics` to be a list"):
        model.compile(metrics="accuracy")
    with pytest.raises(ValueError, match=r"`labels` must be distinct: 'cat' names more than one output"):
        model.save(tmp_path / "m.npz", labels=["cat", "cat", "dog"])
    with pytest.raises(ValueError, match=r"one label per output"):
        model.save(tmp_path / "m.npz", labels=["cat", "dog"])
    with pytest.raises(ValueError, match=r"preprocessing must be one of"):
        model.save(tmp_path / "m.npz", preprocessing="sketchy")
    assert not (tmp_path / "m.npz").exists() and model.labels is None and model.preprocessing is None
    with pytest.raises(ValueError, match=r"Adam expects `learning_rate` in \(0.0, inf\]. Received: learning_rate=0"):
        optimizers.get("adam", learning_rate=0)  # never silently the default


def test_values_beyond_the_models_dtype_and_diverging_training_are_named(model):
    with pytest.raises(ValueError, match=r"`x` holds values beyond the range of float32"):
        model.predict(np.full((2, 4, 2), 1e300))
    model.compile(optimizer=optimizers.SGD(1e30), loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"The loss became (nan|inf).*lower the learning rate") as caught:
        model.fit(X * 1e30, Y, epochs=5, batch_size=2, verbose=0)
    assert isinstance(caught.value, FloatingPointError)


def test_a_layer_too_large_to_build_is_named():
    with pytest.raises(ValueError, match=r"Cannot add average_pooling2d_1 with input shape \(4, 4, 1\): its arrays do "
                                         r"not fit in memory"):
        models.Sequential([layers.AveragePooling2D(10**6, padding="same", input_shape=(4, 4, 1))])


def test_serving_top_k_checks_its_arguments(tmp_path):
    from NeuralNetworks import serving

    network = models.Sequential(seed=0)
    network.add(layers.Rescaling(1 / 255, input_shape=(28, 28)))
    network.add(layers.Flatten())
    network.add(layers.Dense(3, activation="softmax"))
    served = serving.load_model(network.save(tmp_path / "m.npz", labels=["a", "b", "c"]))
    bitmap = np.zeros((28, 28), np.uint8)
    for k in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match=r"top_k expects a positive integer `k`"):
            served.top_k(bitmap, k=k)
    for wrong in (np.zeros((27, 28)), np.zeros(784), np.array([["a"] * 28] * 28)):
        with pytest.raises(ValueError, match=r"top_k expects a \(28, 28\) bitmap of numbers"):
            served.top_k(wrong)
    assert sorted(label for label, _ in served.top_k(bitmap, k=10)) == ["a", "b", "c"]  # k beyond the labels: all
