"""The scikit-learn estimators: scikit-learn's own estimator checks, and the tools users put them in."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from NeuralNetworks.nn import layers, models  # noqa: E402
from NeuralNetworks.sklearn import NeuralNetworkClassifier, NeuralNetworkRegressor  # noqa: E402

FAST = {"hidden_layer_sizes": (32,), "epochs": 30, "batch_size": 64, "learning_rate": 3e-3}
EXPECTED_FAILED_CHECKS: dict[str, str] = {}  # none: every check of scikit-learn's suite passes


@parametrize_with_checks([NeuralNetworkClassifier(random_state=0), NeuralNetworkRegressor(random_state=0)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def test_classifier_learns_digits_in_a_pipeline_and_scores_like_its_predictions(digits):
    x_train, x_test, y_train, y_test = digits
    pipeline = make_pipeline(StandardScaler(), NeuralNetworkClassifier(random_state=0, **FAST)).fit(x_train, y_train)
    classifier = pipeline[-1]
    assert classifier.n_features_in_ == 64 and list(classifier.classes_) == list(range(10))
    assert classifier.n_iter_ == FAST["epochs"] and classifier.loss_curve_[-1] < classifier.loss_curve_[0] / 5
    probabilities = pipeline.predict_proba(x_test)
    assert probabilities.shape == (len(x_test), 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    accuracy = pipeline.score(x_test, y_test)
    assert accuracy == np.mean(pipeline.predict(x_test) == y_test) and accuracy > 0.93


def test_grid_search_and_cross_validation(digits):
    x_train, _, y_train, _ = digits
    pipeline = make_pipeline(StandardScaler(), NeuralNetworkClassifier(random_state=0, **{**FAST, "epochs": 10}))
    search = GridSearchCV(pipeline, {"neuralnetworkclassifier__hidden_layer_sizes": [(4,), (64,)]}, cv=3)
    search.fit(x_train, y_train)
    assert search.best_params_ == {"neuralnetworkclassifier__hidden_layer_sizes": (64,)}
    scores = cross_val_score(search.best_estimator_, x_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_random_state_makes_training_reproducible_and_params_round_trip():
    x, y = load_digits(n_class=3, return_X_y=True)
    first = NeuralNetworkClassifier(random_state=7, **FAST).fit(x / 16, y).predict_proba(x / 16)
    again = NeuralNetworkClassifier(random_state=7, **FAST).fit(x / 16, y).predict_proba(x / 16)
    other = NeuralNetworkClassifier(random_state=8, **FAST).fit(x / 16, y).predict_proba(x / 16)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    estimator = NeuralNetworkClassifier(**FAST).set_params(epochs=3, activation="tanh")
    assert estimator.get_params()["epochs"] == 3 and clone(estimator).get_params() == estimator.get_params()


def test_string_labels_float32_data_and_pickling():
    x, y = load_digits(n_class=2, return_X_y=True)
    names = np.array(["zero", "one"])[y]
    classifier = NeuralNetworkClassifier(random_state=0, **FAST).fit((x / 16).astype(np.float32), names)
    assert list(classifier.classes_) == ["one", "zero"] and classifier.model_.dtype == np.float32
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.predict_proba(x / 16), classifier.predict_proba(x / 16))
    assert set(restored.predict(x / 16)) == {"zero", "one"}


def test_a_custom_network_from_the_model_parameter(digits):
    x_train, x_test, y_train, y_test = digits

    def small_cnn(n_features, n_outputs, seed):
        model = models.Sequential(seed=seed)
        model.add(layers.Rescaling(1 / 16, input_shape=(n_features,)))
        model.add(layers.Reshape((8, 8, 1)))
        model.add(layers.Conv2D(8, 3, padding="same", activation="relu"))
        model.add(layers.Flatten())
        model.add(layers.Dense(n_outputs, activation="softmax"))
        return model

    classifier = NeuralNetworkClassifier(model=small_cnn, random_state=0, epochs=15, batch_size=32)
    assert classifier.fit(x_train, y_train).score(x_test, y_test) > 0.9
    assert isinstance(classifier.model_.layers[2], layers.Conv2D)
    with pytest.raises(ValueError, match="3 outputs"):
        NeuralNetworkClassifier(model=lambda n, k, seed: small_cnn(n, 5, seed)).fit(x_train[:30], y_train[:30] % 3)


def skip_connection_network(n_features, n_outputs, seed):
    """A functional network for the estimators (module level, so that the estimator pickles)."""
    x = layers.Input(shape=(n_features,))
    scaled = layers.Rescaling(1 / 16)(x)
    hidden = layers.Dense(32, activation="relu")(scaled)
    joined = layers.Concatenate()([hidden, scaled])
    return models.Model(inputs=x, outputs=layers.Dense(n_outputs, activation="softmax")(joined), seed=seed)


def test_a_functional_network_with_a_skip_connection_from_the_model_parameter(digits):
    x_train, x_test, y_train, y_test = digits
    skip = skip_connection_network
    classifier = NeuralNetworkClassifier(model=skip, random_state=0, epochs=15, batch_size=32)
    assert classifier.fit(x_train, y_train).score(x_test, y_test) > 0.9
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.predict_proba(x_test), classifier.predict_proba(x_test))


def test_regressor_fits_one_and_several_targets():
    x, y = make_regression(n_samples=300, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    regressor = NeuralNetworkRegressor(random_state=0, **FAST)
    assert regressor.fit(x, y).predict(x).shape == (300, 2) and regressor.score(x, y) > 0.9
    assert regressor.fit(x, y[:, 0]).predict(x).shape == (300,) and regressor.score(x, y[:, 0]) > 0.9


def test_bad_input_is_named():
    classifier = NeuralNetworkClassifier(**FAST)
    with pytest.raises(ValueError, match="at least 2 classes"):
        classifier.fit(np.ones((4, 2)), [1, 1, 1, 1])
    classifier.fit(np.random.default_rng(0).normal(size=(20, 3)), [0, 1] * 10)
    with pytest.raises(ValueError, match="3 features"):
        classifier.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="Unknown optimizer"):
        NeuralNetworkClassifier(optimizer="nope").fit(np.ones((4, 2)), [0, 1, 0, 1])
