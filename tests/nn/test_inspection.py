"""inspect / plot_inspection / format_inspection: correct numbers, and no side effect on later training."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, inspection, layers, losses, models, optimizers


class RunningMean(layers.Layer):
    """Identity that, like BatchNormalization, updates a saved statistic on every training-mode forward."""

    def build(self, input_shape, rng, dtype):
        shape = super().build(input_shape, rng, dtype)
        self.state = {"moving_mean": np.zeros(input_shape, dtype=dtype)}
        return shape

    def forward(self, x, training=False):
        if training:
            self.state["moving_mean"] += x.mean(axis=0)
        return x

    def backward(self, grad_output):
        return grad_output


def small_classifier(dtype: str = "float32", seed: int = 0, dropout: float = 0.0) -> models.Sequential:
    model = models.Sequential(seed=seed, dtype=dtype)
    model.add(layers.Dense(6, activation="relu", input_shape=(4,)))
    model.add(layers.Dropout(dropout))
    model.add(layers.Dense(5, activation="tanh"))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.CategoricalCrossentropy())
    return model


def batch(n: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), np.eye(3)[rng.integers(0, 3, n)]


def test_inference_traces_shapes_counts_and_stats():
    model = small_classifier()
    x, _ = batch()
    traces = inspection.inspect(model, x)
    assert [t.name for t in traces] == [layer.name for layer in model.layers]
    assert [t.layer_type for t in traces] == ["Dense", "Dropout", "Dense", "Dense"]
    assert [t.output_shape for t in traces] == [(6,), (6,), (5,), (3,)]
    assert [t.param_count for t in traces] == [4 * 6 + 6, 0, 6 * 5 + 5, 5 * 3 + 3]
    np.testing.assert_allclose(traces[-1].activations, model.predict(x), rtol=1e-6)
    relu_out = traces[0].activations
    assert traces[0].activation_stats.zero_fraction == pytest.approx(np.mean(relu_out == 0))
    assert traces[0].activation_stats.std == pytest.approx(relu_out.std(), rel=1e-5)
    assert traces[0].dead_fraction == pytest.approx(np.mean(np.all(relu_out == 0, axis=0)))
    assert traces[2].dead_fraction is None  # tanh units cannot be dead
    assert all(t.output_gradient is None and not t.param_gradients and not t.training for t in traces)
    assert set(traces[0].param_stats) == {"kernel", "bias"}


def test_dead_fraction_counts_units_zero_for_every_sample():
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, activation="relu", input_shape=(2,)))
    model.layers[0].params["kernel"][...] = [[1, -1, 1, -1], [1, -1, 1, -1]]
    model.layers[0].params["bias"][...] = [0, 0, -10, 10]  # unit 2 never fires on small inputs, unit 3 always
    traces = inspection.inspect(model, np.array([[1.0, 1.0], [-1.0, -1.0]]))
    # unit 0 fires on sample 0, unit 1 on sample 1, unit 2 never, unit 3 always: one dead unit of four
    assert traces[0].dead_fraction == 0.25


def test_parameter_gradients_match_finite_differences_of_the_loss():
    model = small_classifier(dtype="float64")
    x, y = batch()
    traces = inspection.inspect(model, x, y)

    def loss_value() -> float:
        return model.loss(y, model.forward(x))

    for trace, layer in zip(traces, model.layers, strict=True):
        for key, param in layer.params.items():
            numeric = gradcheck.numeric_gradient(loss_value, param)
            assert gradcheck.relative_error(trace.param_gradients[key], numeric) < 1e-6, (trace.name, key)


def test_output_gradients_match_finite_differences_through_the_rest_of_the_model():
    model = small_classifier(dtype="float64")
    x, y = batch()
    traces = inspection.inspect(model, x, y)
    for index, trace in enumerate(traces):
        output = trace.activations.copy()

        def loss_from_here(output=output, index=index) -> float:
            values = output
            for layer in model.layers[index + 1:]:
                values = layer.forward(values)
            return model.loss(y, values)

        numeric = gradcheck.numeric_gradient(loss_from_here, output)
        assert gradcheck.relative_error(trace.output_gradient, numeric) < 1e-6, trace.name
        assert trace.training


def test_convolutional_model_gradients_and_batch_norm_statistics_are_left_alone():
    model = models.Sequential(seed=0, dtype="float64")
    model.add(layers.Conv2D(2, 3, padding="same", activation="relu", input_shape=(5, 5, 1)))
    model.add(layers.BatchNormalization())
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(2, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5, 5, 1)), np.array([0, 1, 1, 0])
    moving = {key: value.copy() for key, value in model.layers[1].state.items()}

    traces = inspection.inspect(model, x, y)

    assert [t.output_shape for t in traces] == [(5, 5, 2), (5, 5, 2), (2, 2, 2), (8,), (2,)]
    assert all(np.array_equal(moving[key], model.layers[1].state[key]) for key in moving)
    kernel = model.layers[0].params["kernel"]
    numeric = gradcheck.numeric_gradient(lambda: model.loss(y, model.forward(x, training=True)), kernel)
    assert gradcheck.relative_error(traces[0].param_gradients["kernel"], numeric) < 1e-6


def test_unfused_loss_gives_the_same_kind_of_trace():
    model = models.Sequential.from_sizes((3, 4, 2), activation="sigmoid", seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((5, 3))
    y = np.random.default_rng(1).standard_normal((5, 2))
    traces = inspection.inspect(model, x, y)
    np.testing.assert_allclose(traces[-1].output_gradient, 2 * (traces[-1].activations - y) / y.size)
    assert traces[0].param_gradient_stats["kernel"].norm > 0


def test_inspection_changes_neither_weights_nor_optimizer_nor_state():
    model = small_classifier()
    model.add(RunningMean())
    x, y = batch()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # so that the optimizer has slots and iterations
    weights = model.get_named_weights()
    iterations = model.optimizer.iterations
    slots = [{name: value.copy() for name, value in s.items()} for s in model.optimizer.slots]

    inspection.inspect(model, x, y)

    after = model.get_named_weights()
    assert all(np.array_equal(weights[key], after[key]) for key in weights)  # includes the moving mean
    assert model.optimizer.iterations == iterations
    assert len(slots) == len(model.optimizer.slots) == 1  # one flat buffer of all the parameters
    assert all(np.array_equal(s[n], model.optimizer.slots[i][n]) for i, s in enumerate(slots) for n in s)
    assert all(getattr(layer, "_input", None) is None for layer in model.layers)  # no batch kept alive


@pytest.mark.parametrize("dropout_seed", [None, 7])
def test_inspection_does_not_change_a_later_training_run(dropout_seed):
    x, y = batch(32)

    def trained(inspect_first: bool) -> dict[str, np.ndarray]:
        model = small_classifier(seed=3)
        model.layers[1] = dropout = layers.Dropout(0.5, seed=dropout_seed, name="dropout")
        dropout.build((6,), model.rng, model.dtype)
        if inspect_first:
            traces = inspection.inspect(model, x, y)
            assert traces[1].activation_stats.zero_fraction > 0  # dropout really was active while inspecting
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model.get_named_weights()

    plain, inspected = trained(False), trained(True)
    assert all(np.array_equal(plain[key], inspected[key]) for key in plain)


def test_sequential_inspect_delegates_here():
    model = small_classifier()
    x, y = batch()
    traces = model.inspect(x, y)
    assert isinstance(traces[0], inspection.LayerTrace) and traces[0].output_gradient is not None


def test_bad_input_is_named():
    model = small_classifier()
    with pytest.raises(ValueError, match="shape"):
        inspection.inspect(model, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="at least one sample"):
        inspection.inspect(model, np.zeros((0, 4)))
    uncompiled = models.Sequential.from_sizes((4, 2))
    with pytest.raises(RuntimeError, match="compile"):
        inspection.inspect(uncompiled, np.zeros((2, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least one LayerTrace"):
        inspection.plot_inspection([], "unused.png")


def test_plot_and_table(tmp_path):
    model = small_classifier()
    x, y = batch()
    with_gradients = inspection.plot_inspection(inspection.inspect(model, x, y), tmp_path / "sub" / "grads.png")
    activations_only = inspection.plot_inspection(inspection.inspect(model, x), tmp_path / "acts.png")
    for path in (with_gradients, activations_only):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = inspection.format_inspection(inspection.inspect(model, x, y))
    lines = table.splitlines()
    assert lines[0].startswith("Layer (type)") and len(lines) == 2 + len(model.layers) + 1
    assert "dense_1 (Dense)" in table and "(None, 6)" in table and "training mode" in lines[-1]
    line = str(inspection.inspect(model, x, y)[0])
    assert line.startswith("dense_1 (Dense) (None, 6): 30 params;") and "|dL/d kernel|" in line
