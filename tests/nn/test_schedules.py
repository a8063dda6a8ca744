"""Learning-rate schedules (values at known steps, hand computed), optimizers driven by them, ReduceLROnPlateau."""

from __future__ import annotations

import math

import numpy as np
import pytest

from NeuralNetworks.nn import callbacks, layers, models, optimizers, schedules


@pytest.mark.parametrize(("step", "expected"), [
    (0, 0.1), (9, 0.1),        # floor(9 / 10) = 0 drops
    (10, 0.05), (19, 0.05),    # one drop: 0.1 * 0.5
    (25, 0.025),               # two drops: 0.1 * 0.5^2
    (100, 0.1 * 0.5**10),
])
def test_step_decay(step, expected):
    assert schedules.StepDecay(0.1, step_size=10, drop=0.5)(step) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("step", "expected"), [
    (0, 0.1),
    (5, 0.1 * math.sqrt(0.5)),  # 0.5^(5 / 10): continuous, not staircase
    (10, 0.05),
    (20, 0.025),
    (15, 0.1 * 0.5**1.5),
])
def test_exponential_decay(step, expected):
    assert schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(step) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("alpha", "step", "expected"), [
    (0.0, 0, 1.0),
    (0.0, 25, (1 + math.cos(math.pi / 4)) / 2),  # 0.853553...
    (0.0, 50, 0.5),
    (0.0, 100, 0.0),
    (0.0, 150, 0.0),                               # stays at the floor after decay_steps
    (0.1, 50, 0.1 + 0.9 * 0.5),                    # floor alpha * initial, then the cosine above it
    (0.1, 100, 0.1),
])
def test_cosine_decay(alpha, step, expected):
    assert schedules.CosineDecay(1.0, decay_steps=100, alpha=alpha)(step) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (schedules.StepDecay, dict(initial_learning_rate=0.1, step_size=0), "step_size"),
    (schedules.ExponentialDecay, dict(initial_learning_rate=-1.0, decay_steps=10, decay_rate=0.5),
     "initial_learning_rate"),
    (schedules.CosineDecay, dict(initial_learning_rate=0.1, decay_steps=10, alpha=2.0), "alpha"),
])
def test_schedules_reject_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_an_optimizer_with_a_schedule_changes_its_rate_every_step():
    optimizer = optimizers.SGD(schedules.StepDecay(0.1, step_size=1, drop=0.5))
    weight = np.zeros(1)
    optimizer.build([weight])
    rates = []
    for _ in range(4):
        rates.append(optimizer.current_learning_rate)
        optimizer.apply([np.ones(1)])  # w -= lr * 1
    assert rates == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert weight[0] == pytest.approx(-(0.1 + 0.05 + 0.025 + 0.0125))
    assert optimizer.iterations == 4


def test_a_schedule_is_saved_with_the_optimizer(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(2, input_shape=(3,), activation="softmax"))
    model.compile(optimizer=optimizers.Adam(schedules.CosineDecay(0.01, decay_steps=7, alpha=0.1)),
                  loss="sparse_categorical_crossentropy")
    model.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1, batch_size=2, verbose=0)
    loaded = models.load(model.save(tmp_path / "m"))
    schedule = loaded.optimizer.learning_rate
    assert isinstance(schedule, schedules.CosineDecay)
    assert schedule.get_config() == {"initial_learning_rate": 0.01, "decay_steps": 7, "alpha": 0.1}
    assert loaded.optimizer.iterations == 2
    assert loaded.optimizer.current_learning_rate == pytest.approx(model.optimizer.current_learning_rate)


def compiled_model(learning_rate=0.1):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(1, input_shape=(1,)))
    model.compile(optimizer=optimizers.SGD(learning_rate), loss="mse")
    return model


def test_reduce_lr_on_plateau_waits_patience_stalled_epochs():
    model = compiled_model(0.1)
    callback = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.02)
    callback.set_model(model, {})
    callback.on_train_begin()
    rates = []
    for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.9, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85]):
        callback.on_epoch_end(epoch, {"val_loss": val_loss})
        rates.append(model.optimizer.learning_rate)
    # improvements at epochs 0, 1, 4; stalls at 2-3 (reduce at 3), 5-6 (reduce at 6), 7-8 (reduce at 8, floored)
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02])


def test_reduce_lr_on_plateau_respects_min_delta_and_max_mode():
    model = compiled_model(1.0)
    callback = callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1, min_delta=0.01)
    callback.set_model(model, {})
    callback.on_epoch_end(0, {"val_accuracy": 0.80})
    callback.on_epoch_end(1, {"val_accuracy": 0.805})  # better, but by less than min_delta: a stall
    assert model.optimizer.learning_rate == pytest.approx(0.1)


def stalling_fit(model, callback, epochs):
    x = np.linspace(-1, 1, 8).reshape(-1, 1)
    return model.fit(x, 2 * x, epochs=epochs, batch_size=4, verbose=0, callbacks=[callback])


def test_reduce_lr_on_plateau_inside_fit():
    model = compiled_model(0.1)
    # epoch 0 improves on +inf; with a huge min_delta every later epoch counts as a stall
    callback = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    stalling_fit(model, callback, epochs=3)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**2)


def test_reduce_lr_on_plateau_rate_is_in_the_history():
    model = compiled_model(0.1)
    callback = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    history = stalling_fit(model, callback, epochs=3)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])


def test_reduce_lr_on_plateau_starts_afresh_in_each_fit():
    model = compiled_model(0.1)
    callback = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    stalling_fit(model, callback, epochs=1)
    stalling_fit(model, callback, epochs=1)  # a new fit: its first epoch improves on +inf, no reduction
    assert model.optimizer.learning_rate == pytest.approx(0.1)


def test_reduce_lr_on_plateau_refuses_a_schedule():
    model = models.Sequential(seed=0)
    model.add(layers.Dense(1, input_shape=(1,)))
    model.compile(optimizer=optimizers.SGD(schedules.StepDecay(0.1, 10)), loss="mse")
    callback = callbacks.ReduceLROnPlateau(monitor="loss", patience=0)
    callback.set_model(model, {})
    callback.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="schedule"):
        callback.on_epoch_end(1, {"loss": 1.0})


def test_reduce_lr_on_plateau_names_a_missing_monitor():
    model = compiled_model()
    callback = callbacks.ReduceLROnPlateau(monitor="val_loss")
    callback.set_model(model, {})
    with pytest.raises(ValueError, match="val_loss"):
        callback.on_epoch_end(0, {"loss": 1.0})


def test_cosine_decay_over_training_counts_the_steps_fit_takes():
    """The cosine spans exactly the steps fit runs (after validation_split), and a resumed schedule is kept."""
    model = models.Sequential([layers.Dense(2, input_shape=(3,))], seed=0)
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((50, 3)), np.zeros((50, 2))
    model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0,
              callbacks=[callbacks.CosineDecayOverTraining()])
    schedule = model.optimizer.learning_rate
    assert isinstance(schedule, schedules.CosineDecay)
    assert schedule.decay_steps == model.optimizer.iterations == 3 * 5  # 40 training samples in batches of 8
    assert model.optimizer.current_learning_rate == pytest.approx(0.0, abs=1e-12)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callbacks.CosineDecayOverTraining()])
    assert model.optimizer.learning_rate is schedule
