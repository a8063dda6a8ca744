"""Model files whose new entries (the training history, an image or table spec) are hostile: each is refused
with a ModelFileError naming the entry, before anything is built."""

from __future__ import annotations

import numpy as np
import pytest
from hostile_files import contents, write_model

from NeuralNetworks.data import preprocessing
from NeuralNetworks.nn import layers, models, saving


@pytest.fixture
def saved(tmp_path):
    model = models.Sequential([layers.Rescaling(1 / 255, input_shape=(6, 5, 3)), layers.Flatten(),
                               layers.Dense(2, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(np.zeros((4, 6, 5, 3), np.uint8), np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    path = model.save(tmp_path / "m.npz", labels=["a", "b"], preprocessing=preprocessing.image_spec(6, 5, 3, True))
    return contents(path)


def test_a_valid_file_keeps_its_spec_and_history(saved, tmp_path):
    config, arrays = saved
    loaded = models.load(write_model(tmp_path / "ok.npz", config, arrays))
    assert loaded.preprocessing == {"kind": "image", "height": 6, "width": 5, "channels": 3, "invert": True}
    assert len(loaded.history.history["loss"]) == 2


@pytest.mark.parametrize("entry, value, message", [
    ("history", {"loss": [1.0, "x"]}, "finite numbers"),
    ("history", {"loss": [1.0], "accuracy": [1.0, 2.0]}, "one value per epoch"),
    ("history", {f"m{i}": [1.0] for i in range(70)}, "at most 64 metrics"),
    ("history", [1.0], "JSON object"),
    ("preprocessing", {"kind": "image", "height": 6, "width": 5, "channels": 1, "invert": True},
     r"describes inputs of shape \(6, 5, 1\), but the model takes \(6, 5, 3\)"),
    ("preprocessing", {"kind": "image", "height": 6, "width": 5, "channels": 3, "invert": True, "x": 1},
     "unknown: 'x'"),
    ("preprocessing", {"kind": "table", "target": "y", "task": "regression", "dropna": False,
                       "columns": [{"name": "a", "type": "category", "categories": ["p"] * 3, "fill": "p",
                                    "indicator": False}], "target_mean": 0, "target_scale": 1},
     "categories must be distinct"),
    ("preprocessing", "sketch", "must be one of quickdraw, mnist"),
])
def test_hostile_entries_are_refused_by_name(saved, tmp_path, entry, value, message):
    config, arrays = saved
    write_model(tmp_path / "bad.npz", {**config, entry: value}, arrays)
    with pytest.raises(saving.ModelFileError, match=message):
        models.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("value", ["quickdraw-sideways", 1, None])
def test_a_hostile_training_split_is_refused(saved, tmp_path, value):
    config, arrays = saved
    write_model(tmp_path / "bad.npz", {**config, "training_split": value}, arrays)
    with pytest.raises(saving.ModelFileError, match="training_split must be one of"):
        models.load(tmp_path / "bad.npz")
