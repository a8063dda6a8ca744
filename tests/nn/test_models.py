"""Sequential end to end: the README snippet, XOR, a hand-worked step, callbacks, reproducibility, bad input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from NeuralNetworks.nn import callbacks, layers, losses, models, optimizers

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def bars_dataset(n_per_class: int = 60, seed: int = 0):
    """Three classes of 28x28x1 images (horizontal bar, vertical bar, diagonal) with noise, one-hot labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            image = rng.uniform(0, 0.2, (28, 28)).astype(np.float32)
            k = rng.integers(6, 22)
            if label == 0:
                image[k - 1:k + 2, 4:24] = 1.0
            elif label == 1:
                image[4:24, k - 1:k + 2] = 1.0
            else:
                idx = np.arange(4, 24)
                image[idx, idx] = 1.0
                image[idx[:-1], idx[1:]] = 1.0
            images.append(image[..., None])
            labels.append(label)
    x, y = np.stack(images), np.eye(3, dtype=np.float32)[labels]
    order = rng.permutation(len(x))
    return x[order], y[order]


def test_readme_snippet_runs_verbatim(tmp_path, capsys):
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
