"""Functional models: layers.Input, layers called on tensors, models.Model, merge layers, shared and frozen layers."""

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, layers, losses, models, optimizers, saving

RNG = np.random.default_rng(0)


def residual_model(dtype="float64", seed=0):
    x = layers.Input(shape=(6, 6, 2), name="image")
    h = layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    shortcut = h
    h = layers.Conv2D(3, 3, padding="same", activation="tanh")(h)
    h = layers.Add()([h, shortcut])
    h = layers.Flatten()(h)
    y = layers.Dense(4, activation="softmax")(h)
    return models.Model(inputs=x, outputs=y, seed=seed, dtype=dtype)


@pytest.mark.parametrize("merge, shapes", [
    (layers.Add(), [(3, 4), (3, 4)]),
    (layers.Add(), [(5,), (5,), (5,)]),
    (layers.Subtract(), [(2, 3), (2, 3)]),
    (layers.Multiply(), [(4,), (4,), (4,)]),
    (layers.Average(), [(2, 2, 3), (2, 2, 3)]),
    (layers.Concatenate(), [(2, 3), (2, 5)]),
    (layers.Concatenate(axis=1), [(2, 3), (4, 3)]),
])
def test_merge_layer_gradients_match_finite_differences(merge, shapes):
    result = gradcheck.check_layer(merge, shapes)
    assert result.passed, str(result)
    assert len(result.errors) == len(shapes)


def test_residual_block_gradients_match_finite_differences():
    model = residual_model()
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy())
    x = RNG.standard_normal((5, 6, 6, 2))
    y = np.array([0, 1, 2, 3, 1])
    result = gradcheck.check_model(model, x, y)
    assert result.passed, str(result)
    assert len(result.errors) == 6  # two kernels and biases of the convolutions, the dense kernel and bias


def test_a_layer_used_twice_shares_its_weights_and_sums_its_gradients():
    x = layers.Input(shape=(3,))
    shared = layers.Dense(3, activation="tanh")
    y = layers.Dense(2)(shared(shared(x)))  # the same weights applied twice, each call with its own caches
    model = models.Model(inputs=x, outputs=y, seed=1, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    assert [layer.name for layer in model.layers] == ["dense_1", "dense_2"]
    result = gradcheck.check_model(model, RNG.standard_normal((4, 3)), RNG.standard_normal((4, 2)))
    assert result.passed, str(result)


def test_several_inputs_and_outputs_fit_evaluate_predict_and_name_metrics():
    a, b = layers.Input(shape=(4,), name="a"), layers.Input(shape=(2,), name="b")
    joined = layers.Concatenate()([layers.Dense(5, activation="relu")(a), b])
    first = layers.Dense(3, activation="softmax", name="kind")(joined)
    second = layers.Dense(3, activation="softmax", name="other")(joined)
    model = models.Model(inputs=[a, b], outputs=[first, second], seed=0)
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xa, xb = RNG.standard_normal((120, 4)), RNG.standard_normal((120, 2))
    labels = (xa[:, 0] > 0).astype(int) + (xb[:, 0] > 0)
    history = model.fit([xa, xb], [labels, 2 - labels], epochs=40, batch_size=16, verbose=0, validation_split=0.25)
    assert {"loss", "kind_accuracy", "other_accuracy", "val_kind_accuracy"} <= set(history.history)
    assert history.history["kind_accuracy"][-1] > 0.85
    assert history.history["loss"][-1] < history.history["loss"][0]
    predictions = model.predict({"a": xa[:7], "b": xb[:7]})
    assert [p.shape for p in predictions] == [(7, 3), (7, 3)]
    logs = model.evaluate([xa, xb], [labels, 2 - labels], return_dict=True)
    assert logs["loss"] == pytest.approx(model.compute_loss((labels, 2 - labels), model.predict([xa, xb])), rel=1e-5)
    with pytest.raises(ValueError, match=r"`x` must be a list of 2 arrays \(a, b\)"):
        model.predict(xa)


def test_a_functional_model_saves_and_loads_with_its_graph(tmp_path):
    model = residual_model(dtype="float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = RNG.standard_normal((16, 6, 6, 2)).astype("float32"), RNG.integers(0, 4, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = model.save(tmp_path / "residual", labels=["a", "b", "c", "d"])
    loaded = models.load(path)
    assert type(loaded) is models.Model
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded(data=x[0])[0] == model(data=x[0])[0]
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)  # resumes with the saved optimizer state
    assert loaded.get_config() == model.get_config()


def test_frozen_layers_keep_their_weights_and_batch_normalization_runs_in_inference_mode(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(8, activation="relu", input_shape=(4,)))
    model.add(layers.BatchNormalization())
    model.add(layers.Dense(3, activation="softmax"))
    model.layers[0].trainable = False
    model.layers[1].trainable = False
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    x, y = RNG.standard_normal((64, 4)).astype("float32"), RNG.integers(0, 3, 64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = model.get_weights()
    for frozen, value in zip(before[:6], after[:6], strict=True):  # dense_1, then gamma/beta/moving statistics
        np.testing.assert_array_equal(frozen, value)
    assert not np.array_equal(before[6], after[6])  # the head learned
    summary = []
    model.summary(print_fn=summary.append)
    assert "Trainable params: 27" in summary[0] and "Non-trainable params: 72" in summary[0]
    loaded = models.load(model.save(tmp_path / "frozen"))
    assert [layer.trainable for layer in loaded.layers] == [False, False, True]
    assert loaded.optimizer.slots[0]["m"].size == 27  # the optimizer keeps state for the trainable weights only
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_unfreezing_repacks_the_weights_so_the_optimizer_steps_them():
    model = models.Sequential([layers.Dense(2, input_shape=(3,))], seed=0)
    model.layers[0].trainable = False
    model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    frozen = model.get_weights()
    model.layers[0].trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], model.get_weights()[0])


def test_summary_shows_what_each_call_is_connected_to():
    lines = []
    residual_model().summary(print_fn=lines.append)
    table = lines[0]
    assert "Connected to" in table
    assert "image (InputLayer)" in table
    row = next(line for line in table.splitlines() if line.startswith("add_1 (Add)"))
    assert row.rstrip().endswith("conv2d_2, conv2d_1")


def test_graph_errors_are_named():
    x = layers.Input(shape=(3,))
    other = layers.Input(shape=(3,))
    with pytest.raises(ValueError, match="not among the model's inputs"):
        models.Model(inputs=x, outputs=layers.Add()([x, other]))
    with pytest.raises(ValueError, match=r"Cannot call add_\w* on inputs|Add needs inputs of one shape"):
        layers.Add(name="add_x")([x, layers.Input(shape=(4,))])
    with pytest.raises(TypeError, match="is called on a list of tensors"):
        layers.Add()(x)
    with pytest.raises(TypeError, match="merges several tensors"):
        models.Sequential().add(layers.Add())
    dense = layers.Dense(2)
    dense(x)
    models.Model(inputs=x, outputs=dense(x))
    with pytest.raises(ValueError, match="was built for inputs of shape"):
        dense(layers.Input(shape=(5,)))


@pytest.fixture
def scale_layer():
    """The issue's example, exactly: a layer of one's own in one class. Unregistered afterwards, so that other
    tests see the built-in registry."""
    @layers.register
    class Scale(layers.Layer):
        """y = x * s, one learned scale per feature."""
        def build(self, input_shape, rng, dtype):
            out = super().build(input_shape, rng, dtype)
            self.add_weight("s", (input_shape[-1],), "ones")
            return out
        def forward(self, x, training=False):
            self._x = x
            return x * self.params["s"]
        def backward(self, grad, input_gradient=True):
            self.grads["s"][...] = (grad * self._x).reshape(-1, grad.shape[-1]).sum(0)
            return grad * self.params["s"] if input_gradient else None

    yield Scale
    layers.REGISTRY.pop("Scale", None)


def test_a_registered_layer_of_ones_own_trains_saves_and_loads(tmp_path, scale_layer):
    Scale = scale_layer
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, activation="tanh", input_shape=(3,)))
    model.add(Scale())
    model.add(layers.Dense(2, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = RNG.standard_normal((32, 3)).astype("float32"), RNG.integers(0, 2, 32)
    model.fit(x, y, epochs=3, verbose=0)
    assert not np.array_equal(model.layers[1].params["s"], np.ones(4, "float32"))
    loaded = models.load(model.save(tmp_path / "scaled"))
    assert isinstance(loaded.layers[1], Scale)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    result = gradcheck.check_layer(Scale(), (5,))
    assert result.passed, str(result)


def test_an_unregistered_layer_is_named_at_save_and_at_load(tmp_path, scale_layer):
    Scale = scale_layer
    class Unlisted(Scale):
        pass

    model = models.Sequential([layers.Dense(2, input_shape=(3,)), Unlisted()], seed=0)
    with pytest.raises(ValueError, match=r"Unlisted, which is not registered: decorate its class with @layers.register"):
        model.save(tmp_path / "unlisted")
    path = models.Sequential([layers.Dense(2, input_shape=(3,)), Scale()], seed=0).save(tmp_path / "scale")
    registered = layers.REGISTRY.pop("Scale")
    try:
        with pytest.raises(saving.ModelFileError, match=r"unknown layer class 'Scale'.*@layers.register.*never imports"):
            models.load(path)
    finally:
        layers.register(registered)


def test_a_registered_layer_is_built_within_the_budget_to_learn_its_weights(tmp_path, scale_layer):
    Scale = scale_layer
    from NeuralNetworks.budget import DEFAULT_BUDGET

    path = models.Sequential([layers.Dense(2, input_shape=(3,)), Scale()], seed=0).save(tmp_path / "scale")
    small = DEFAULT_BUDGET.__class__(**{**DEFAULT_BUDGET.__dict__, "max_parameters": 9})
    with pytest.raises(saving.ModelFileError, match="max_parameters"):
        models.load(path, budget=small)


def test_registering_a_built_in_name_is_refused():
    with pytest.raises(ValueError, match="name of a built-in layer"):
        layers.register(type("Dense", (layers.Layer,), {}))
    with pytest.raises(TypeError, match="subclass of layers.Layer"):
        layers.register(object)


def test_a_layer_called_on_arrays_computes_now():
    """Called on an array batch (not a symbolic tensor), a layer builds for its sample shape and runs forward."""
    dense = layers.Dense(3)
    assert dense(np.ones((2, 4))).shape == (2, 3) and dense.input_shape == (4,)
    np.testing.assert_array_equal(layers.Add()([np.ones((2, 3)), np.full((2, 3), 2.0)]), np.full((2, 3), 3.0))
