"""Training steps split over the cores (nn.split_steps), in threads (nn.threaded_steps) or forked processes
(nn.forked_steps, whose own tests are in test_forked_steps.py): the same gradients as one process, errors that
end the step instead of hanging it, and the rule for when ``fit`` splits."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from split_models import CLASSES, INPUT_SHAPE, batch, forked, needs_fork, residual_two_outputs, small_cnn, two_cores

from NeuralNetworks.nn import layers, losses, models, optimizers, split_steps, threaded_steps
from NeuralNetworks.nn._threads import blas_controller

pytestmark = pytest.mark.skipif(blas_controller() is None, reason="threadpoolctl is not installed")

MECHANISMS = [pytest.param(threaded_steps.ThreadedSteps, id="threads"),
              pytest.param(forked, id="processes", marks=needs_fork)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("parts", [2, 3])
def test_split_gradients_equal_one_thread(mechanism, parts):
    """Loss, predictions, every gradient and BatchNormalization's moving statistics (whole-batch statistics)
    as one thread computes them, up to float32 rounding; parts of unequal size included (10 = 3 + 3 + 4)."""
    x, y = batch()
    alone, split = small_cnn(), small_cnn()
    loss, y_pred = alone.compute_gradients(x, y)
    with mechanism(split, parts, blas_controller()) as steps:
        split_loss, split_pred = steps.compute_gradients(x, y)
    assert split_loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(split_pred, y_pred, atol=1e-5)
    np.testing.assert_allclose(split.flat.grads, alone.flat.grads, atol=1e-5)
    np.testing.assert_allclose(split.flat.state, alone.flat.state, atol=1e-6)
    assert all("replica_sum" not in vars(layer) for layer in split.layers)  # one process again


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_split_weighted_and_several_outputs(mechanism):
    x, y = batch()
    weights = np.linspace(0.1, 2.0, len(x)).astype(np.float32)
    alone, split = residual_two_outputs(), residual_two_outputs()
    loss, y_pred = alone.compute_gradients(x, (y, y[::-1].copy()), weights)
    with mechanism(split, 2, blas_controller()) as steps:
        split_loss, split_pred = steps.compute_gradients(x, (y, y[::-1].copy()), weights)
    assert split_loss == pytest.approx(loss, rel=1e-5)
    assert isinstance(split_pred, list) and len(split_pred) == 2
    for mine, theirs in zip(split_pred, y_pred, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)
    np.testing.assert_allclose(split.flat.grads, alone.flat.grads, atol=1e-5)


def two_inputs(seed: int = 1) -> models.Model:
    images, extra = layers.Input(INPUT_SHAPE), layers.Input((5,))
    x = layers.BatchNormalization()(layers.Conv2D(3, 3, padding="same", activation="relu")(images))
    x = layers.Concatenate()([layers.Flatten()(x), layers.Dense(4)(extra)])
    model = models.Model([images, extra], layers.Dense(CLASSES, activation="softmax")(x), seed=seed)
    model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    return model


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_split_of_a_model_with_two_inputs(mechanism):
    """Each part gets its rows of every input (a tuple of arrays crosses the process boundary as one)."""
    x, y = batch()
    inputs = (x, np.random.default_rng(1).normal(size=(len(x), 5)).astype(np.float32))
    alone, split = two_inputs(), two_inputs()
    loss, y_pred = alone.compute_gradients(inputs, y)
    with mechanism(split, 2, blas_controller()) as steps:
        split_loss, split_pred = steps.compute_gradients(inputs, y)
    assert split_loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(split_pred, y_pred, atol=1e-5)
    np.testing.assert_allclose(split.flat.grads, alone.flat.grads, atol=1e-5)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_replicas_follow_the_weights_and_frozen_statistics(mechanism):
    """Every step starts from the model's current weights and moving statistics, not the replica's own."""
    x, y = batch()
    alone, split = small_cnn(frozen_normalization=True), small_cnn(frozen_normalization=True)
    for model in (alone, split):
        model.flat.params[:] += 0.25
        model.flat.state[:] = np.linspace(0.5, 1.5, model.flat.state.size)
    alone.compute_gradients(x, y)
    with mechanism(split, 2, blas_controller()) as steps:
        steps.compute_gradients(x, y)
    np.testing.assert_allclose(split.flat.grads, alone.flat.grads, atol=1e-5)


def test_threads_keep_their_replicas_for_the_next_fit_with_every_weight_copied_in():
    """The second split reuses the first one's replicas, given every weight again: frozen ones (here
    BatchNormalization's gamma and beta, in no flat buffer) included."""
    x, y = batch()
    alone, split = small_cnn(frozen_normalization=True), small_cnn(frozen_normalization=True)
    with threaded_steps.ThreadedSteps(split, 2, blas_controller()) as steps:
        steps.compute_gradients(x, y)
        first = steps.replicas[0]
    for model in (alone, split):
        model.set_weights([weight * 1.5 + 0.25 for weight in model.get_weights()])
    alone.compute_gradients(x, y)
    with threaded_steps.ThreadedSteps(split, 2, blas_controller()) as steps:
        steps.compute_gradients(x, y)
        assert steps.replicas[0] is first
    np.testing.assert_allclose(split.flat.grads, alone.flat.grads, atol=1e-5)
    assert all("replica_sum" not in vars(layer) for layer in first.layers)


@pytest.mark.parametrize("change", ["trainable", "hyperparameter", "loss"])
def test_replicas_are_rebuilt_when_the_model_changed(change):
    x, y = batch()
    model = small_cnn(dropout=0.5)
    with threaded_steps.ThreadedSteps(model, 2, blas_controller()) as steps:
        steps.compute_gradients(x, y)
        first = steps.replicas[0]
    if change == "trainable":
        model.layers[0].trainable = False
        model.prepare_training()
    elif change == "hyperparameter":
        next(layer for layer in model.layers if isinstance(layer, layers.Dropout)).rate = 0.25
    else:
        model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    with threaded_steps.ThreadedSteps(model, 2, blas_controller()) as steps:
        steps.compute_gradients(x, y)
        assert steps.replicas[0] is not first
        assert steps.replicas[0].get_config() == model.get_config()


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("seed", [None, 3])
def test_replicas_draw_their_own_dropout_masks(mechanism, seed):
    """Two equal halves through Dropout get different masks (a replica does not repeat the model's stream, nor a
    seeded layer's)."""
    half, labels = batch(4)
    x, y = np.concatenate([half, half]), np.concatenate([labels, labels])
    model = small_cnn(dropout=0.5, dropout_seed=seed)
    with mechanism(model, 2, blas_controller()) as steps:
        _, y_pred = steps.compute_gradients(x, y)
    assert not np.allclose(y_pred[:4], y_pred[4:])


def test_an_error_in_any_part_ends_the_step_with_that_error():
    x, y = batch()
    model = small_cnn()
    with threaded_steps.ThreadedSteps(model, 2, blas_controller()) as steps:
        def fail(*args, **kwargs):
            raise ValueError("broken replica")

        steps.replicas[0].compute_gradients = fail  # the other part waits at BatchNormalization's barrier
        with pytest.raises(ValueError, match="broken replica"):
            steps.compute_gradients(x, y)
        del steps.replicas[0].compute_gradients
        loss, _ = steps.compute_gradients(x, y)  # the barrier works again
    assert np.isfinite(loss)


def test_fit_splits_big_steps_and_trains_as_one_thread(monkeypatch):
    """With the threshold lowered, a 2-core fit splits every batch, and SGD without dropout reaches the same
    weights as one thread (the batches' whole-batch statistics and gradients, rounding aside)."""
    x, y = batch(64, seed=3)
    alone = small_cnn()
    alone_history = alone.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    two_cores(monkeypatch)
    split = small_cnn()
    used = []
    original = threaded_steps.ThreadedSteps.compute_gradients

    def counted(self, *args, **kwargs):
        used.append(self.parts)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(threaded_steps.ThreadedSteps, "compute_gradients", counted)
    monkeypatch.setattr(split_steps, "forking_allowed", lambda: False)
    history = split.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert used == [2] * 8
    np.testing.assert_allclose(split.flat.params, alone.flat.params, atol=1e-4)
    np.testing.assert_allclose(history.history["loss"], alone_history.history["loss"], rtol=1e-4)
    assert history.history["accuracy"] == alone_history.history["accuracy"]


def test_when_fit_splits(monkeypatch):
    model = small_cnn()
    per_sample = split_steps.forward_operations_per_sample(model)
    assert per_sample == sum(layer.operations_per_sample(layer.input_shape) for layer in model.layers)
    monkeypatch.setattr(split_steps, "MIN_PART_MULTIPLY_ADDS", per_sample * 32)
    assert split_steps.part_count(model, 64, 2) == 2
    assert split_steps.part_count(model, 63, 2) == 1  # 31 samples per part: below the threshold
    assert split_steps.part_count(model, 256, 4) == 4
    assert split_steps.part_count(model, 96, 4) == 3
    assert split_steps.part_count(model, 256, 1) == 1


def test_a_layer_of_ones_own_is_never_replicated():
    class Twice(layers.Layer):
        def forward(self, x, training=False):
            return 2 * x

        def backward(self, grad_output, input_gradient=True):
            return 2 * grad_output

    model = small_cnn()
    assert split_steps.replicable(model)
    model.add(Twice())
    assert not split_steps.replicable(model)


def test_only_the_main_thread_splits(monkeypatch):
    two_cores(monkeypatch)
    model = small_cnn()
    seen = []

    def enter():
        with split_steps.split_steps(model, 16, split_steps.MIN_FORKED_STEPS) as steps:
            seen.append(steps)

    enter()
    worker = threading.Thread(target=enter)
    worker.start()
    worker.join()
    assert isinstance(seen[0], split_steps.ForkedSteps | split_steps.ThreadedSteps) and seen[1] is None


def test_one_blas_thread_turns_the_split_off(monkeypatch):
    """``--threads 1`` / ``threadpool_limits(1)``: BLAS's thread count is the number of cores the split may use."""
    monkeypatch.setattr(split_steps, "MIN_PART_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(split_steps, "available_cores", lambda: 2)
    model = small_cnn()
    with blas_controller().limit(limits=1, user_api="blas"), \
            split_steps.split_steps(model, 16, split_steps.MIN_FORKED_STEPS) as steps:
        assert steps is None
