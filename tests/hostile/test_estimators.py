"""What a scikit-learn estimator's constructor argument can make ``fit`` allocate: held to the same Budget as a
model file (weights, optimizer state and one batch's activations), refused by name before anything is allocated;
a fit that is allowed stays within it. Bad parameter types get a message naming the parameter, and pickling never
produces bytes that cannot be unpickled."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

from NeuralNetworks.budget import MIB, Budget  # noqa: E402
from NeuralNetworks.nn import layers, models  # noqa: E402
from NeuralNetworks.sklearn import NeuralNetworkClassifier, NeuralNetworkRegressor  # noqa: E402

SMALL = Budget(max_model_bytes=16 * MIB, max_parameters=1 << 20)


def data(features: int = 20, samples: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(samples, features)), np.arange(samples) % 3


@pytest.mark.parametrize("hidden, pattern", [
    ((10**6,), r"about 2.98 GiB .* budget's max_model_bytes \(1 GiB\)"),
    ((10**4, 10**4, 10**4), r"200,\d{3},\d{3} weights, more than the budget's max_parameters \(33,554,432\)"),
    ((2**23,), r"max_parameters"),
])
def test_huge_hidden_layers_are_refused_before_anything_is_allocated(hidden, pattern):
    x, y = data()
    tracemalloc.start()
    with pytest.raises(ValueError, match=pattern):
        NeuralNetworkClassifier(hidden, epochs=1).fit(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * MIB  # refused from the arithmetic, not from a failed allocation


def test_a_large_batch_of_wide_activations_is_refused_by_bytes():
    x, y = data(samples=4096)
    with pytest.raises(ValueError, match=r"would take about .* a batch of 4096.*max_model_bytes \(16 MiB\)"):
        NeuralNetworkClassifier((600,), epochs=1, batch_size=4096, budget=SMALL).fit(x, y)


def test_a_model_builder_is_held_to_the_budget_too():
    def builder(n_features, n_outputs, seed):
        model = models.Sequential(seed=seed)
        model.add(layers.Dense(2000, input_shape=(n_features,)))
        model.add(layers.Dense(n_outputs, activation="softmax"))
        return model

    x, y = data(features=600)
    with pytest.raises(ValueError, match="max_parameters"):
        NeuralNetworkClassifier(model=builder, epochs=1, budget=SMALL).fit(x, y)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(hidden=st.lists(st.integers(1, 1500), min_size=1, max_size=3), batch=st.integers(1, 512))
def test_a_fit_that_is_allowed_stays_within_the_budget(hidden, batch):
    x, y = data(features=50, samples=512)
    estimator = NeuralNetworkClassifier(tuple(hidden), epochs=1, batch_size=batch, budget=SMALL, random_state=0)
    tracemalloc.start()
    try:
        estimator.fit(x, y)
    except ValueError as error:
        assert "budget" in str(error)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= SMALL.max_model_bytes + x.nbytes * 2  # the data's own copies on top


@pytest.mark.parametrize("arguments, pattern", [
    ({"hidden_layer_sizes": None}, r"`hidden_layer_sizes` must be a tuple of positive integers"),
    ({"hidden_layer_sizes": "100"}, r"`hidden_layer_sizes` must be a tuple"),
    ({"hidden_layer_sizes": (10, 2.5)}, r"`hidden_layer_sizes` must be a tuple"),
    ({"hidden_layer_sizes": (10, 0)}, r"`hidden_layer_sizes` must hold positive integers"),
    ({"model": 3}, r"`model` must be a callable model\(n_features_in, n_outputs, seed\)"),
    ({"model": "mlp"}, r"`model` must be a callable"),
])
@pytest.mark.parametrize("estimator", [NeuralNetworkClassifier, NeuralNetworkRegressor])
def test_bad_constructor_arguments_are_named(estimator, arguments, pattern):
    x, y = data()
    with pytest.raises((TypeError, ValueError), match=pattern):
        estimator(**arguments, epochs=1).fit(x, y)


def test_pickling_a_diverged_estimator_fails_by_name_instead_of_writing_unloadable_bytes():
    x, y = data()
    estimator = NeuralNetworkRegressor((8,), epochs=1, random_state=0).fit(x, y.astype(float))
    estimator.model_.flat.params[0] = np.inf  # as if training had diverged
    with pytest.raises(ValueError, match="infinite or NaN"):
        pickle.dumps(estimator)
    estimator.model_.flat.params[0] = 0.0
    assert pickle.loads(pickle.dumps(estimator)).predict(x).shape == (len(x),)
