"""Whatever ``save`` writes, ``load`` reads: a step whose arithmetic overflows the optimizer's state stops there
by name (instead of saving an infinity that load refuses), and save applies load's own checks and limits (a
model deeper than the layer limit, a name load would refuse) before writing anything."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from NeuralNetworks.budget import Budget
from NeuralNetworks.nn import layers, models, saving
from NeuralNetworks.nn.optimizers import NonFiniteStateError

BOUNDED = settings(max_examples=60, deadline=None, derandomize=True, database=None)


def classifier(optimizer: str = "adam") -> models.Sequential:
    model = models.Sequential(seed=0)
    model.add(layers.Dense(4, activation="relu", input_shape=(3,)))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])  # the ones that keep squares
def test_a_step_that_overflows_the_state_stops_there_by_name(tmp_path, optimizer):
    model = classifier(optimizer)
    huge = np.full((8, 3), 3e30, np.float32)  # squared gradients overflow float32
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteStateError, match=r"step 1 made .* infinite or NaN"):
        model.fit(huge, np.arange(8) % 3, epochs=3, verbose=0)
    assert model.optimizer.iterations == 1  # stopped at the step that produced it
    with pytest.raises(ValueError, match=r"Cannot save the model to .*infinite or NaN"):
        model.save(tmp_path / "diverged.npz")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_model_deeper_than_the_loaders_limit_is_not_saved(tmp_path, monkeypatch):
    """Save and load hold a model to the same limits (here a budget of 8 layers, where the default's 1,024 would
    take a minute to build): one layer more is refused by save, exactly the limit is saved and loaded."""
    monkeypatch.setattr(saving, "DEFAULT_BUDGET", Budget(max_layers=8))

    def deep(count: int) -> models.Sequential:
        return models.Sequential([layers.Dense(2, input_shape=(2,)), *(layers.Dense(2) for _ in range(count - 1))])

    with pytest.raises(ValueError, match=r"models.load would refuse the file \(model.layers must be a list of 1 to 8"):
        deep(9).save(tmp_path / "deep.npz")
    assert list(tmp_path.iterdir()) == []
    assert len(models.load(deep(8).save(tmp_path / "deep.npz")).layers) == 8


@BOUNDED
@given(name=st.text(max_size=300), labels=st.lists(st.text(max_size=300), min_size=3, max_size=3),
       scale=st.floats(allow_nan=True, allow_infinity=True))
def test_whatever_save_writes_load_reads(tmp_path_factory, name, labels, scale):
    model = models.Sequential(seed=0)
    try:
        model.add(layers.Rescaling(scale, input_shape=(3,)))
        model.add(layers.Dense(3, activation="softmax", name=name or None))
        path = model.save(tmp_path_factory.mktemp("save") / "m.npz", labels=labels)
    except (ValueError, TypeError):
        return  # refused by name before writing: fine
    loaded = models.load(path)
    assert [loaded.labels[i] for i in range(3)] == labels
    np.testing.assert_array_equal(loaded.flat.params, model.flat.params)
