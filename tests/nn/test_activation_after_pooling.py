"""The execution plan's rewrite: a ReLU layer whose output only a max pooling reads runs its activation after
the pooling (``Graph.pooled_activations``). Every output and gradient must equal the model run as written."""

import numpy as np
import pytest

from NeuralNetworks.nn import activations, gradcheck, inspection, layers, models, optimizers, presets
from NeuralNetworks.nn.layers.windows import output_length, padding_amounts

RNG = np.random.default_rng(0)


def compiled(model):
    model.compile(optimizer=optimizers.Adam(), loss="sparse_categorical_crossentropy")
    return model


def step(model, x, y, reorder=True):
    """Loss, predictions, every gradient, predict and one-sample classification of ``model``, with its plan or
    as written."""
    if not reorder:
        model.graph.pooled_activations = {}
    loss, y_pred = model.compute_gradients(*model.prepare_data(x, y))
    return loss, y_pred.copy(), model.flat.grads.copy(), model.predict(x), model(data=x[0])


def assert_same_as_written(make, x, y):
    """``make()`` twice (same seed): once with its plan, once without; everything must agree exactly."""
    planned, written = compiled(make()), compiled(make())
    assert planned.graph.pooled_activations, "the plan should move at least one activation"
    first, second = step(planned, x, y), step(written, x, y, reorder=False)
    assert first[0] == second[0]
    for a, b in zip(first[1:4], second[1:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[4] == second[4]
    return planned


def small_cnn(padding="valid", pool=2, strides=None, dtype="float32"):
    model = models.Sequential(seed=3, dtype=dtype)
    model.add(layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(9, 9, 2)))
    model.add(layers.MaxPooling2D(pool, strides=strides, padding=padding))
    model.add(layers.Conv2D(5, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2, padding="same"))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    return model


def test_default_cnn_matches_the_layers_as_written():
    x = RNG.random((8, 28, 28, 1)).astype(np.float32)
    y = RNG.integers(0, 10, 8)
    model = assert_same_as_written(lambda: presets.default_cnn((28, 28, 1), 10, seed=1), x, y)
    assert model.graph.pooled_activations == {2: 1, 4: 3}  # both Conv2D(relu)-MaxPooling2D pairs
    conv, pool = model.layers[1], model.layers[2]
    model.forward(x, training=True)
    assert conv._saved.shape == (8, *pool.output_shape)  # the activation ran on the pooled values


def test_the_shipped_architecture_with_same_padding_matches():
    def make():  # the digits/doodles stages, narrower: 28 -> 14 -> 7 -> 4, pooling with "same" padding
        return presets.augmented_cnn((28, 28, 1), 5, [], stages=((4,), (4, 6), (6,)), hidden_units=8, seed=2)

    x = RNG.random((6, 28, 28, 1)).astype(np.float32)
    model = assert_same_as_written(make, x, RNG.integers(0, 5, 6))
    assert len(model.graph.pooled_activations) == 3


@pytest.mark.parametrize("pool, strides, padding", [(2, None, "valid"), (2, None, "same"), (3, 2, "same"),
                                                    (3, 1, "valid"), (2, 3, "valid")])
def test_windows_all_negative_or_tied_at_zero_get_the_same_gradients(pool, strides, padding):
    """An identity convolution makes z the input: windows all below zero, maxima tied at 0 or at a positive
    value, overlapping windows and windows that skip pixels."""
    def make():
        model = models.Sequential(seed=0)
        model.add(layers.Conv2D(2, 1, activation="relu", input_shape=(7, 7, 2)))
        model.add(layers.MaxPooling2D(pool, strides=strides, padding=padding))
        model.add(layers.Flatten())
        model.add(layers.Dense(3, activation="softmax"))
        model.layers[0].params["kernel"][...] = np.eye(2, dtype=np.float32)
        model.layers[0].params["bias"][...] = 0
        return model

    x = RNG.choice(np.array([-2.0, -1.0, -0.0, 0.0, 0.0, 1.0, 1.0, 3.0], np.float32), size=(12, 7, 7, 2))
    x[0] = -1.0  # every window negative
    x[1] = 0.0  # every window tied at 0
    x[2, ::2] = -3.0
    x[2, 1::2] = 0.0
    assert_same_as_written(make, x, RNG.integers(0, 3, 12))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_overlapping_and_padded_pools_and_frozen_lowest_layer_match(dtype):
    def make():
        model = small_cnn(padding="same", pool=3, strides=2, dtype=dtype)
        model.layers[0].trainable = False  # backward stops at the second convolution, without dL/dx
        return model

    x = RNG.standard_normal((5, 9, 9, 2)).astype(dtype)
    model = assert_same_as_written(make, x, RNG.integers(0, 3, 5))
    assert model.graph.pooled_activations == {1: 0, 3: 2}


def test_functional_model_moves_only_the_pairs_it_may():
    def make():  # new layers each time: two models made of the same layers would share their weights
        x = layers.Input(shape=(8, 8, 2))
        moved = layers.Conv2D(3, 3, padding="same", activation="relu", name="moved")(x)
        pooled = layers.MaxPooling2D(2, name="pool_moved")(moved)
        branch = layers.Conv2D(3, 3, padding="same", activation="relu", name="branch")(pooled)  # read twice
        joined = layers.Add()([layers.MaxPooling2D(2)(branch), layers.AveragePooling2D(2)(branch)])
        tanh = layers.Conv2D(2, 1, activation="tanh", name="tanh")(joined)  # not exact under max pooling
        leaky = layers.Conv2D(2, 1, activation="leaky_relu", name="leaky")(layers.MaxPooling2D(1)(tanh))
        out = layers.Dense(4, activation="softmax")(layers.Flatten()(layers.MaxPooling2D(2)(leaky)))
        return models.Model(inputs=x, outputs=out, seed=4)

    model = assert_same_as_written(make, RNG.standard_normal((6, 8, 8, 2)).astype(np.float32),
                                   RNG.integers(0, 4, 6))
    calls = model.graph.calls
    assert {calls[p].layer.name: calls[c].layer.name for p, c in model.graph.pooled_activations.items()} == \
        {"pool_moved": "moved"}


def test_no_plan_for_average_pooling_shared_layers_outputs_or_layers_of_ones_own():
    class Doubled(layers.Conv2D):
        def forward(self, x, training=False):  # computes its output its own way: must stay as written
            return 2 * super().forward(x, training)

    def model_with(first, pooling=None, reuse=False):
        x = layers.Input(shape=(8, 8, 2))
        h = first(x)
        pooled = (pooling or layers.MaxPooling2D(2))(h)
        if reuse:
            pooled = first(layers.Conv2D(2, 1)(pooled))  # the same layer called twice
        return models.Model(inputs=x, outputs=layers.Flatten()(pooled))

    relu = dict(filters=2, kernel_size=3, padding="same", activation="relu")
    assert model_with(layers.Conv2D(**relu)).graph.pooled_activations == {1: 0}
    assert model_with(layers.Conv2D(**relu), layers.AveragePooling2D(2)).graph.pooled_activations == {}
    assert model_with(layers.Conv2D(**relu), reuse=True).graph.pooled_activations == {}
    assert model_with(Doubled(**relu)).graph.pooled_activations == {}
    assert model_with(layers.Conv2D(**{**relu, "activation": "sigmoid"})).graph.pooled_activations == {}
    assert model_with(layers.Activation("relu")).graph.pooled_activations == {1: 0}
    x = layers.Input(shape=(8, 8, 2))
    conv = layers.Conv2D(**relu)(x)
    both = models.Model(inputs=x, outputs=[conv, layers.MaxPooling2D(2)(conv)])  # the ReLU values are an output
    assert both.graph.pooled_activations == {}


@pytest.mark.parametrize("activation, window", [("leaky_relu", [-1.7999998, -1.7999997]), ("tanh", [5.0, 5.0000005]),
                                                ("sigmoid", [5.0, 5.0000005])])
def test_other_monotone_activations_stay_as_written_since_rounding_moves_the_maximum(activation, window):
    """Why the plan moves ReLU only: these map two different values of a window to one float32, so the first
    maximum after them (where backward sends the gradient) is another pixel than the maximum before them."""
    values = np.array(window, np.float32)
    after = activations.get(activation)(values)
    assert after[0] == after[1] and np.argmax(after) != np.argmax(values)
    x = layers.Input(shape=(4, 4, 1))
    conv = layers.Conv2D(1, 1, activation=activation)(x)
    assert models.Model(inputs=x, outputs=layers.MaxPooling2D(2)(conv)).graph.pooled_activations == {}


def test_whole_model_gradients_match_finite_differences():
    model = small_cnn(padding="same", dtype="float64")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert model.graph.pooled_activations
    result = gradcheck.check_model(model, RNG.standard_normal((3, 9, 9, 2)), np.array([0, 1, 2]))
    assert result.passed, str(result)


def test_inspection_observes_the_layers_as_written():
    """``inspect`` walks the graph with observers: it sees each layer's own output and output gradient (the
    convolution's ReLU values and dL/d them), as without the plan."""
    x, y = RNG.standard_normal((4, 9, 9, 2)).astype(np.float32), RNG.integers(0, 3, 4)
    planned, written = compiled(small_cnn()), compiled(small_cnn())
    written.graph.pooled_activations = {}
    planned.compute_gradients(x, y)  # a planned step first: inspecting after it must not mix the two
    ours, theirs = inspection.inspect(planned, x, y), inspection.inspect(written, x, y)
    assert ours[0].activations.shape == (4, 9, 9, 4) and ours[0].activations.min() == 0
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.activations, b.activations)
        np.testing.assert_array_equal(a.output_gradient, b.output_gradient)
        assert a.param_gradients.keys() == b.param_gradients.keys()
        for key in a.param_gradients:
            np.testing.assert_array_equal(a.param_gradients[key], b.param_gradients[key])
    planned.forward(x, training=True)
    with pytest.raises(RuntimeError, match="observe"):
        planned.graph.backward(planned.training_plan.steps, {5: np.zeros((4, 3), np.float32)}, observe=print)


def test_every_same_padded_window_holds_a_pixel_of_the_image():
    """What makes "same" max pooling commute with ReLU: no window is all padding (its -inf would become 0)."""
    for size in range(1, 12):
        for window in range(1, 6):
            for stride in range(1, 6):
                before, _ = padding_amounts(size, window, stride, "same")
                for k in range(output_length(size, window, stride, "same")):
                    start = k * stride - before
                    assert start <= size - 1 and start + window - 1 >= 0, (size, window, stride, k)


def test_a_saved_model_keeps_its_plan(tmp_path):
    model = compiled(small_cnn())
    loaded = models.load(model.save(tmp_path / "model"))
    assert loaded.graph.pooled_activations == model.graph.pooled_activations
    x = RNG.standard_normal((3, 9, 9, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
