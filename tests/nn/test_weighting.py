"""fit's class_weight and sample_weight, the CSVLogger callback, and the training history kept in the model file."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from NeuralNetworks.nn import callbacks, layers, losses, model_config, models, optimizers
from NeuralNetworks.nn.weighting import balanced_class_weight


def data(n: int = 120, minority: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(np.int64)
    x = (rng.normal(size=(n, 4)) + y[:, None] * 0.8).astype(np.float32)
    return x, y


def classifier(learning_rate: float = 0.1, regression: bool = False) -> models.Sequential:
    model = models.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                               layers.Dense(1 if regression else 2, activation=None if regression else "softmax")],
                              seed=0)
    model.compile(optimizers.SGD(learning_rate), "mse" if regression else "sparse_categorical_crossentropy",
                  ["accuracy"] if not regression else [])
    return model


def test_weights_scale_the_gradient_as_a_larger_step_would():
    x, y = data()
    doubled = classifier(0.1)
    doubled.fit(x, y, epochs=2, batch_size=16, verbose=0, sample_weight=np.full(len(y), 2.0))
    by_class = classifier(0.1)
    by_class.fit(x, y, epochs=2, batch_size=16, verbose=0, class_weight={0: 2.0, 1: 2.0})
    faster = classifier(0.2)
    faster.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b, c in zip(doubled.get_weights(), by_class.get_weights(), faster.get_weights(), strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, c, rtol=1e-4, atol=1e-6)


def test_the_weighted_loss_is_the_keras_sum_over_the_batch_size():
    y_true, y_pred = np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    loss = losses.SparseCategoricalCrossentropy()
    weights = np.array([1.0, 0.0, 2.0])
    per_sample = -np.log([0.9, 0.7, 0.5])
    assert losses.weighted(loss, y_true, y_pred, weights) == pytest.approx((per_sample * weights).sum() / 3)
    assert loss.per_sample(y_true, y_pred).mean() == pytest.approx(loss(y_true, y_pred))


def test_balanced_weights_lift_the_minority_class():
    x, y = data(400, minority=0.1, seed=1)
    assert balanced_class_weight(y, 2)[1] == pytest.approx(len(y) / (2 * y.sum()))
    plain, balanced = classifier(0.05), classifier(0.05)
    plain.fit(x, y, epochs=10, batch_size=32, verbose=0)
    balanced.fit(x, y, epochs=10, batch_size=32, verbose=0, class_weight="balanced")
    recall = [(model.predict(x).argmax(axis=1)[y == 1] == 1).mean() for model in (plain, balanced)]
    assert recall[1] > recall[0]


def test_bad_weights_are_refused_by_name():
    x, y = data(20)
    model = classifier()
    with pytest.raises(ValueError, match=r"sample_weight must hold one weight per sample, shape \(20,\)"):
        model.fit(x, y, verbose=0, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite numbers >= 0"):
        model.fit(x, y, verbose=0, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="class_weight keys must be class indices 0 to 1"):
        model.fit(x, y, verbose=0, class_weight={2: 1.0})
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, y, verbose=0, class_weight="even")
    with pytest.raises(ValueError, match="class_weight needs a classifier"):
        classifier(regression=True).fit(x, y.astype(np.float32), verbose=0, class_weight={0: 1.0})


def test_csv_logger_writes_one_row_per_epoch_and_appends(tmp_path):
    x, y = data(40)
    log = tmp_path / "log.csv"
    model = classifier()
    model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(log)])
    rows = list(csv.reader(log.open()))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]
    assert float(rows[3][1]) == pytest.approx(model.history.history["loss"][2])
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(log, append=True)])
    assert len(list(csv.reader(log.open()))) == 5  # no second header
    with pytest.raises(ValueError, match="one-character `separator`"):
        callbacks.CSVLogger(log, separator="::")


def test_the_history_is_saved_and_loaded(tmp_path):
    x, y = data(40)
    model = classifier()
    model.fit(x, y, epochs=2, verbose=0)
    loaded = models.load(model.save(tmp_path / "m.npz"))
    assert loaded.history.history.keys() == model.history.history.keys()
    for key, values in model.history.history.items():  # pytest 9.2's approx takes no dict of lists
        assert loaded.history.history[key] == pytest.approx(values)
    with pytest.raises(ValueError, match="finite"):
        model_config.check_history({"loss": [float("nan")]})
