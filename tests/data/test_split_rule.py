"""QuickDraw loaded in memory and streamed from disk draw different test rows (the streamed index is O(1) per
class and cannot reproduce numpy's permutation), so a model file records which split trained it and the command
line refuses to test it on the other one, whose test set holds drawings it trained on."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks import data
from NeuralNetworks.cli import main
from NeuralNetworks.nn import models


def rows_of(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images.reshape(len(images), -1)}


def test_the_two_splits_differ_which_is_why_a_model_records_its_own(quickdraw_dir):
    classes = data.list_classes(quickdraw_dir)[:2]
    loaded = data.load("quickdraw", quickdraw_dir, classes=classes, max_per_class=300)
    streamed = data.stream("quickdraw", quickdraw_dir, classes=classes, max_per_class=300)
    streamed_train, _ = streamed.train.gather(np.arange(len(streamed.train)))
    assert rows_of(streamed_train) & rows_of(loaded.x_test)  # the bug: trained on what the other split tests


def test_a_model_is_tested_on_the_split_it_was_trained_with_or_refused(quickdraw_dir, tmp_path, capsys):
    classes = data.list_classes(quickdraw_dir)[:2]
    common = ["--dataset", "quickdraw", "--data-dir", str(quickdraw_dir), "--classes", *classes,
              "--max-per-class", "100"]
    plots = ["--confusion", str(tmp_path / "c.png"), "--samples", str(tmp_path / "s.png")]
    streamed, loaded = tmp_path / "streamed.npz", tmp_path / "loaded.npz"
    assert main(["train", *common, "--stream", "--epochs", "1", "--quiet", "--out", str(streamed)]) == 0
    assert main(["train", *common, "--epochs", "1", "--quiet", "--out", str(loaded)]) == 0
    assert models.load(streamed).training_split == "quickdraw-streamed"
    assert models.load(loaded).training_split == "quickdraw-in-memory"
    capsys.readouterr()
    assert main(["test", "--model", str(streamed), *common, *plots]) == 2
    assert "trained on the streamed split of QuickDraw" in capsys.readouterr().err
    assert main(["test", "--model", str(loaded), *common, "--stream", *plots]) == 2
    assert "test it with --no-stream" in capsys.readouterr().err
    assert main(["test", "--model", str(streamed), *common, "--stream", *plots]) == 0
    assert main(["test", "--model", str(loaded), *common, *plots]) == 0
    assert main(["train", *common, "--epochs", "1", "--quiet", "--resume", str(streamed), "--out",
                 str(tmp_path / "mixed.npz")]) == 2


def test_the_entry_is_checked_when_saved_and_loaded(tmp_path):
    from NeuralNetworks.nn import layers

    model = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))], seed=0)
    model.training_split = "quickdraw-sideways"
    with pytest.raises(ValueError, match="training_split must be one of quickdraw-in-memory, quickdraw-streamed"):
        model.save(tmp_path / "m.npz")
    model.training_split = "quickdraw-streamed"
    assert models.load(model.save(tmp_path / "m.npz")).training_split == "quickdraw-streamed"
