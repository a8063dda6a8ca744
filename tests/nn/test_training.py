"""The gradient path: weights packed in one buffer, compute / apply as two public halves, the training loop's
seams (Trainer.train_step, CallbackList), and what is decided once per compile."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import callbacks, layers, models, optimizers, training


def cnn_with_batch_norm(seed=0, dtype="float64"):
    model = models.Sequential(seed=seed, dtype=dtype)
    model.add(layers.Conv2D(3, 3, input_shape=(6, 6, 1), activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.Flatten())
    model.add(layers.Dense(2, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


def test_every_weight_is_a_view_into_the_flat_buffers():
    model = cnn_with_batch_norm()
    flat = model.flat
    assert flat.param_names == ("conv2d_1/kernel", "conv2d_1/bias", "batch_normalization_1/gamma",
                                "batch_normalization_1/beta", "dense_1/kernel", "dense_1/bias")
    assert flat.state_names == ("batch_normalization_1/moving_mean", "batch_normalization_1/moving_variance")
    assert flat.params.ndim == flat.grads.ndim == 1 and flat.params.size == model.count_params()
    assert flat.params.flags.c_contiguous and flat.grads.flags.c_contiguous
    for layer in model.layers:
        for key in layer.params:
            assert np.shares_memory(layer.params[key], flat.params)
            assert np.shares_memory(layer.grads[key], flat.grads)
        for value in layer.state.values():
            assert np.shares_memory(value, flat.state)
    np.testing.assert_array_equal(flat.param_views(flat.params)["dense_1/kernel"], model.layers[3].params["kernel"])
    assert model.optimizer.is_built_for([flat.params])  # compile bound the optimizer to the buffer, once


def test_compute_then_apply_is_one_training_step_and_halves_average_to_the_whole():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    whole, halves = (models.Sequential.from_sizes((3, 5, 2), activation="tanh", seed=0, dtype="float64")
                     for _ in range(2))
    for model in (whole, halves):
        model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="mse")
    before = halves.flat.params.copy()
    loss_value, y_pred = whole.train_on_batch(x, y)
    assert loss_value == pytest.approx(float(np.mean((y_pred - y) ** 2)))

    total = np.zeros_like(halves.flat.grads)
    for part in (slice(0, 4), slice(4, 8)):
        halves.compute_gradients(x[part], y[part])
        total += halves.flat.grads / 2
    np.testing.assert_array_equal(halves.flat.params, before)  # computing gradients changes no weight
    halves.flat.grads[...] = total
    halves.apply_gradients()
    np.testing.assert_allclose(halves.flat.params, whole.flat.params, rtol=1e-12)
    assert halves.optimizer.iterations == whole.optimizer.iterations == 1


def test_a_trainer_subclass_sits_between_computing_and_applying_gradients():
    calls = []

    class HalvingTrainer(training.Trainer):
        """Halves every gradient before the step, as an engine averaging over two processes might."""

        def train_step(self, x, y):
            loss_value, y_pred = self.model.compute_gradients(x, y)
            self.model.flat.grads *= 0.5
            calls.append(len(x))
            self.model.apply_gradients()
            return loss_value, y_pred

    x = np.random.default_rng(0).standard_normal((12, 3))
    y = np.random.default_rng(1).standard_normal((12, 2))
    halved = models.Sequential.from_sizes((3, 4, 2), seed=0, dtype="float64")
    plain = models.Sequential.from_sizes((3, 4, 2), seed=0, dtype="float64")
    halved.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    plain.compile(optimizer=optimizers.SGD(0.05), loss="mse")  # half the gradient at lr 0.1 = lr 0.05
    history = HalvingTrainer(halved).fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    plain.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    assert calls == [4, 4, 4] * 2 and len(history.history["loss"]) == 2
    np.testing.assert_allclose(halved.flat.params, plain.flat.params, rtol=1e-12)


def test_the_lowest_layer_with_weights_is_told_to_skip_its_input_gradient():
    seen = {}

    class Spy(layers.Dense):
        def backward_preactivation(self, grad_z, input_gradient=True):
            seen[self.name] = input_gradient
            return super().backward_preactivation(grad_z, input_gradient)

    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(0.5, input_shape=(3,)))
    model.add(Spy(4, activation="relu", name="low"))
    model.add(Spy(2, activation="softmax", name="top"))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert model.fuses_softmax
    model.fit(np.ones((4, 3)), np.eye(2)[[0, 1, 0, 1]], verbose=0)
    assert seen == {"low": False, "top": True}


def test_a_layer_written_without_input_gradient_still_trains_as_the_lowest():
    class Scale(layers.Layer):
        def build(self, input_shape, rng, dtype):
            shape = super().build(input_shape, rng, dtype)
            self.add_weight("scale", input_shape, "ones")
            return shape

        def forward(self, x, training=False):
            self._x = x
            return x * self.params["scale"]

        def backward(self, grad_output):
            self.grads["scale"][...] = np.sum(grad_output * self._x, axis=0)
            return grad_output * self.params["scale"]

    model = models.Sequential([Scale(input_shape=(2,)), layers.Dense(1)], seed=0)
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    model.fit(np.ones((4, 2)), np.full((4, 1), 3.0), epochs=5, verbose=0)
    assert not np.allclose(model.layers[0].params["scale"], 1.0)


def test_a_replaced_layer_is_packed_again_before_training():
    model = models.Sequential.from_sizes((3, 4, 2), seed=0)
    model.compile(optimizer="sgd", loss="mse")
    replacement = layers.Dense(2, name="replacement")
    replacement.build((4,), np.random.default_rng(5), model.dtype)
    model.layers[1] = replacement
    before = replacement.params["kernel"].copy()
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    assert np.shares_memory(replacement.params["kernel"], model.flat.params)
    assert not np.array_equal(replacement.params["kernel"], before)  # the new layer trained
    assert "replacement/kernel" in model.flat.param_names


def test_callbacks_that_ignore_batches_cost_nothing_per_batch():
    class CountBatches(callbacks.Callback):
        def __init__(self):
            self.batches = 0

        def on_batch_end(self, batch, logs=None):
            self.batches += 1

    counter, history = CountBatches(), callbacks.History()
    listed = callbacks.CallbackList([history], model=None, params={})
    assert not listed.wants_batch_logs  # History acts per epoch only
    assert callbacks.CallbackList([history, counter], model=None, params={}).wants_batch_logs
    model = models.Sequential.from_sizes((3, 2), seed=0)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((10, 3)), np.zeros((10, 2)), epochs=2, batch_size=4, callbacks=[counter], verbose=0)
    assert counter.batches == 6 and counter.model is model and counter.params["steps"] == 3


def early_stopping_epochs(stopper, values):
    """The epochs an EarlyStopping lets run on this sequence of val_loss values."""
    stopper.set_model(models.Sequential(), {})
    stopper.on_train_begin()
    for epoch, value in enumerate(values):
        stopper.on_epoch_end(epoch, {"val_loss": value})
        if stopper.model.stop_training:
            return epoch + 1
    return len(values)


def test_early_stopping_can_ask_for_a_relative_improvement():
    creeping = [0.5 * (1 - 1e-5) ** epoch for epoch in range(20)]  # 0.001% better every epoch
    assert early_stopping_epochs(callbacks.EarlyStopping(patience=3), creeping) == 20  # Keras: never stops
    relative = callbacks.EarlyStopping(patience=3, min_relative_delta=1e-3)
    assert early_stopping_epochs(relative, creeping) == 4 and relative.best_epoch == 0
    steady = [0.5 * 0.99 ** epoch for epoch in range(20)]  # 1% better every epoch: real progress
    assert early_stopping_epochs(callbacks.EarlyStopping(patience=3, min_relative_delta=1e-3), steady) == 20
    with pytest.raises(ValueError, match=r"min_relative_delta` in \[0.0, 1.0\)"):
        callbacks.EarlyStopping(min_relative_delta=1.5)


def test_optimizer_slots_are_bound_once_and_adam_passes_its_bias_correction():
    first, second = np.ones(3), np.ones((2, 2))
    adam = optimizers.Adam(0.1)
    adam.build([first, second])
    slots = adam.slots[0]["m"]
    adam.apply([np.ones(3), np.ones((2, 2))])
    adam.apply([np.ones(3), np.ones((2, 2))])
    assert adam.slots[0]["m"] is slots and adam.iterations == 2
    assert adam.step_size(0.1, 1) == pytest.approx(0.1 * np.sqrt(1 - 0.999) / (1 - 0.9))
    np.testing.assert_allclose(first, second.reshape(-1)[:3])  # same rule, same gradients, same step
    with pytest.raises(ValueError, match=r"Adam.apply got 1 gradients for 2 variables"):
        adam.apply([np.ones(3)])
