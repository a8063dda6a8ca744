"""Sequential end to end: XOR, a hand-worked step, callbacks, reproducibility, weights, calls, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from nn_test_data import bars_dataset

from NeuralNetworks.nn import callbacks, layers, losses, models, optimizers

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def test_xor_reaches_error_below_1e_3():
    model = models.Sequential(seed=1)
    model.add(layers.Dense(3, activation="tanh", input_shape=(2,)))
    model.add(layers.Dense(1, activation="tanh"))
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=losses.MeanSquaredError())
    history = model.fit(XOR_X, XOR_Y, epochs=1000, batch_size=1, verbose=0)
    assert history.history["loss"][-1] < 1e-3
    assert model.evaluate(XOR_X, XOR_Y) < 1e-3
    np.testing.assert_array_equal(model.predict(XOR_X).round(), XOR_Y)


def test_one_hand_worked_training_step():
    model = models.Sequential()
    model.add(layers.Dense(1, input_shape=(2,)))
    model.layers[0].params["kernel"][...] = [[0.5], [-0.25]]
    model.layers[0].params["bias"][...] = [0.1]
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=losses.MeanSquaredError())
    # z = 1 * 0.5 + 2 * (-0.25) + 0.1 = 0.1;  L = (0.1 - 1)^2 = 0.81;  dL/dz = 2 (0.1 - 1) = -1.8
    # dL/dW = x^T dz = [[-1.8], [-3.6]];  dL/db = -1.8;  W <- W - 0.1 dW;  b <- b - 0.1 db
    history = model.fit(np.array([[1.0, 2.0]]), np.array([[1.0]]), epochs=1, batch_size=1, verbose=0)
    assert history.history["loss"] == [pytest.approx(0.81)]
    np.testing.assert_allclose(model.layers[0].params["kernel"], [[0.68], [0.11]], rtol=1e-6)
    np.testing.assert_allclose(model.layers[0].params["bias"], [0.28], rtol=1e-6)


def small_classifier(seed=0, dtype="float32", dropout=0.0):
    model = models.Sequential(seed=seed, dtype=dtype)
    model.add(layers.Flatten(input_shape=(28, 28, 1)))
    model.add(layers.Dense(16, activation="relu"))
    if dropout:
        model.add(layers.Dropout(dropout))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    return model


def test_same_seed_gives_bit_identical_runs():
    x, y = bars_dataset(20)
    runs = []
    for _ in range(2):
        model = small_classifier(seed=42, dropout=0.3)
        history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
        runs.append((model.get_named_weights(), history.history))
    (w1, h1), (w2, h2) = runs
    assert h1 == h2
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    other = small_classifier(seed=43, dropout=0.3)
    other.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    assert not np.array_equal(other.get_named_weights()["dense_1/kernel"], w1["dense_1/kernel"])


def test_float32_by_default_and_float64_on_request():
    x, y = bars_dataset(5)
    assert small_classifier().predict(x).dtype == np.float32
    model = small_classifier(dtype="float64")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.layers[1].params["kernel"].dtype == np.float64
    assert model.predict(x).dtype == np.float64
    with pytest.raises(ValueError, match="float32 or float64. Received: dtype='int32'"):
        models.Sequential(dtype="int32")


def test_history_evaluate_and_predict_follow_keras():
    x, y = bars_dataset(20)
    model = small_classifier()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y), verbose=0)
    assert history is model.history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2] and len(history.history["val_loss"]) == 3
    loss, accuracy = model.evaluate(x, y)
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1])
    assert model.predict(x).shape == (60, 3)
    batch_results = model(data=x[:4])
    assert len(batch_results) == 4 and all(isinstance(r[1], dict) for r in batch_results)
    assert model(data=x[0, :, :, 0])[0] == batch_results[0][0]  # a missing channel axis is accepted


def test_validation_split_shuffles_before_splitting():
    x, y = bars_dataset(30)
    order = np.argsort(y.argmax(axis=1), kind="stable")  # class-sorted, the Keras trap
    seen = []

    def classes_seen(y_true, y_pred):
        seen.append(set(np.asarray(y_true).argmax(axis=1).tolist()))
        return 0.0

    model = small_classifier()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=[classes_seen])
    model.fit(x[order], y[order], epochs=1, batch_size=90, validation_split=0.2, shuffle=False, verbose=0)
    assert seen[-1] == {0, 1, 2}  # the validation call: every class is represented


def test_early_stopping_stops_when_val_loss_plateaus():
    x, y = bars_dataset(10)
    model = small_classifier()
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-9), loss="categorical_crossentropy")
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=1e-3)
    history = model.fit(x, y, epochs=50, validation_data=(x, y), callbacks=[stopper], verbose=0)
    assert len(history.epoch) == 3 and stopper.stopped_epoch == 2  # best at epoch 0, then 2 epochs of patience


class Sabotage(callbacks.Callback):
    """From the second epoch on, scramble the weights so validation loss only gets worse."""

    def __init__(self):
        self.weights_after_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            rng = np.random.default_rng(epoch)
            for layer in self.model.layers:
                for param in layer.params.values():
                    param += rng.normal(0, 1.0, param.shape).astype(param.dtype)

    def on_epoch_end(self, epoch, logs=None):
        self.weights_after_epoch.append(self.model.get_named_weights())


def test_restore_best_weights_also_when_training_runs_to_the_last_epoch():
    x, y = bars_dataset(10)
    model = small_classifier()
    sabotage = Sabotage()
    stopper = callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    history = model.fit(x, y, epochs=3, validation_data=(x, y), callbacks=[sabotage, stopper], verbose=0)
    assert stopper.stopped_epoch is None and len(history.epoch) == 3  # never stopped early
    best = int(np.argmin(history.history["val_loss"]))
    assert best == 0
    final = model.get_named_weights()
    assert all(np.array_equal(final[k], sabotage.weights_after_epoch[best][k]) for k in final)


def test_model_checkpoint_saves_the_best_model(tmp_path):
    x, y = bars_dataset(10)
    model = small_classifier()
    path = tmp_path / "best.npz"
    checkpoint = callbacks.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)
    model.fit(x, y, epochs=2, validation_data=(x, y), callbacks=[checkpoint], verbose=0)
    assert path.exists() and checkpoint.best == max(model.history.history["val_accuracy"])
    assert models.load(path).predict(x).shape == (30, 3)


def test_early_stopping_on_a_quantity_that_is_not_logged_says_what_is():
    x, y = bars_dataset(5)
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*Logged: accuracy, loss"):
        small_classifier().fit(x, y, callbacks=[callbacks.EarlyStopping()], verbose=0)


def test_from_sizes_builds_a_plain_mlp():
    model = models.Sequential.from_sizes((2, 7, 7, 3, 1), activation="tanh")
    assert [layer.units for layer in model.layers] == [7, 7, 3, 1]
    assert model.input_shape == (2,) and model.layers[-1].activation.name == "linear"
    assert model.count_params() == (2 * 7 + 7) + (7 * 7 + 7) + (7 * 3 + 3) + (3 * 1 + 1)


def test_first_layer_without_input_shape_builds_on_first_fit():
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, activation="relu"))
    model.add(layers.Dense(1))
    assert not model.built
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 5)), np.ones((8, 1)), verbose=0)
    assert model.built and model.layers[0].params["kernel"].shape == (5, 4)


@pytest.mark.parametrize(
    ("fit_args", "error", "message"),
    [
        (lambda x, y: (x[:10], y[:9]), ValueError, r"same length: x has 10 samples, y has 9 labels"),
        (lambda x, y: (x, y[:, :2]), ValueError, r"`y` must have shape \(60, 3\).*Received an array of shape \(60, 2\)"),
        (lambda x, y: (x, y.argmax(axis=1)), ValueError, r"one-hot labels of shape \(60, 3\).*SparseCategorical"),
        (lambda x, y: (np.full(x.shape, "a"), y), TypeError, r"`x` must be a numeric array. Received an array of dtype <U1"),
        (lambda x, y: (np.where(x > 0.5, np.nan, x), y), ValueError, r"`x` contains NaN"),
        (lambda x, y: (x[:, :20], y), ValueError, r"samples of shape \(28, 28, 1\).*Received an array of shape \(60, 20, 28, 1\)"),
    ],
    ids=["lengths", "label-width", "integer-labels", "non-numeric", "nan", "image-size"],
)
def test_bad_training_input_is_named(fit_args, error, message):
    x, y = bars_dataset(20)
    with pytest.raises(error, match=message):
        small_classifier().fit(*fit_args(x, y), verbose=0)


def test_fit_before_compile_says_to_compile():
    model = models.Sequential()
    model.add(layers.Dense(1, input_shape=(2,)))
    with pytest.raises(RuntimeError, match=r"Call model.compile\(optimizer=..., loss=...\) before model.fit\(\)"):
        model.fit(XOR_X, XOR_Y)


def test_calling_the_model_on_a_wrong_image_size_is_named():
    model = small_classifier()
    with pytest.raises(ValueError, match=r"expects one sample of shape \(28, 28, 1\).*Received an array of shape \(32, 32\)"):
        model(data=np.zeros((32, 32)))


def test_sparse_labels_train_and_are_range_checked():
    x, y = bars_dataset(20)
    model = small_classifier()
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    history = model.fit(x, y.argmax(axis=1), epochs=5, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    with pytest.raises(ValueError, match=r"labels outside \[0, 2\]"):
        model.fit(x, y.argmax(axis=1) + 1, verbose=0)


def test_calling_the_model_on_an_array_returns_outputs_and_on_data_classifies():
    x, _ = bars_dataset(5)
    model = small_classifier(dropout=0.5)
    model.labels = {0: "horizontal", 1: "vertical", 2: "diagonal"}
    outputs = model(x)
    np.testing.assert_array_equal(outputs, model.predict(x))
    assert not np.array_equal(model(x, training=True), outputs)  # dropout is active in training mode
    label, scores = model(data=x[0])
    assert label == max(scores, key=scores.get) and set(scores) == {"horizontal", "vertical", "diagonal"}
    assert scores[label] == pytest.approx(float(outputs[0].max()))
    with pytest.raises(TypeError, match=r"model\(x\), or on samples to classify, model\(data=...\)"):
        model()
    with pytest.raises(TypeError, match="model\\(x\\)"):
        model(x, data=x[0])


def test_weights_follow_keras_order_and_the_keyed_form_stays():
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, input_shape=(3,)))
    model.add(layers.BatchNormalization())
    model.add(layers.Dense(2, use_bias=False))
    names = list(model.get_named_weights())
    assert names == ["dense_1/kernel", "dense_1/bias", "batch_normalization_1/gamma", "batch_normalization_1/beta",
                     "batch_normalization_1/moving_mean", "batch_normalization_1/moving_variance", "dense_2/kernel"]
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 4), (4,), (4,), (4,), (4,), (4,), (4, 2)]
    replaced = [np.full_like(w, index) for index, w in enumerate(weights)]
    model.set_weights(replaced)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), replaced, strict=True))
    assert np.all(model.layers[1].state["moving_mean"] == 4)  # non-trainable arrays come after gamma and beta
    model.set_named_weights(dict(zip(names, weights, strict=True)))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True))


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        (lambda w: w[:-1], ValueError, r"set_weights expects 7 arrays \(dense_1/kernel, .*\)\. Received 6"),
        (lambda w: [w[1], *w[1:]], ValueError, r"shape mismatch for dense_1/kernel: model expects \(3, 4\), got \(4,\)"),
        (lambda w: [np.full((3, 4), np.nan), *w[1:]], ValueError, r"dense_1/kernel must hold finite"),
        (lambda w: {"dense_1/kernel": w[0]}, TypeError, r"list of arrays in layer order.*set_named_weights"),
    ],
    ids=["count", "shape", "nan", "dict"],
)
def test_set_weights_names_what_does_not_fit(weights, error, message):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, input_shape=(3,)))
    model.add(layers.BatchNormalization())
    model.add(layers.Dense(2, use_bias=False))
    with pytest.raises(error, match=message):
        model.set_weights(weights(model.get_weights()))


def test_metrics_are_logged_under_their_own_names():
    x, y = bars_dataset(5)
    model = small_classifier()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acc", "mse", "mean_absolute_error"])
    history = model.fit(x, y, epochs=1, validation_data=(x, y), verbose=0)
    assert set(history.history) == {"loss", "acc", "mse", "mean_absolute_error",
                                    "val_loss", "val_acc", "val_mse", "val_mean_absolute_error"}
    y_pred = model.predict(x)
    assert history.history["val_mse"][0] == pytest.approx(float(np.mean((y_pred - y) ** 2)), rel=1e-5)
