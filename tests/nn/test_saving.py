"""The model file: round trips, atomic writes, and clear errors for truncated or tampered files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from NeuralNetworks.nn import layers, losses, models, optimizers, saving


def trained_model(tmp_path=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    model = models.Sequential(seed=0)
    model.add(layers.Flatten(input_shape=(4, 2)))
    model.add(layers.Dense(8, activation="tanh"))
    model.add(layers.Dropout(0.2))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.CategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def test_save_then_load_gives_identical_predictions_labels_and_training(tmp_path):
    model, x, y = trained_model()
    path = model.save(tmp_path / "model", labels={0: "bicycle", 1: "cat", 2: "flower"})
    assert path == tmp_path / "model.npz"
    loaded = models.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.labels == {0: "bicycle", 1: "cat", 2: "flower"}
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    # the optimizer state comes along, so training resumes exactly where it stopped
    assert isinstance(loaded.optimizer, optimizers.Adam) and loaded.optimizer.iterations == model.optimizer.iterations
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_saved_file_has_ordinary_permissions(tmp_path):
    import os
    import stat

    model, _, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_preprocessing_is_saved_for_the_app(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.npz", preprocessing="mnist")
    assert models.load(tmp_path / "m.npz").preprocessing == "mnist"


def test_saving_into_a_folder_and_list_labels(tmp_path):
    model, x, _ = trained_model()
    path = model.save(tmp_path, labels=["a", "b", "c"])
    assert path == tmp_path / saving.DEFAULT_FILENAME
    assert models.load(tmp_path).labels == {0: "a", 1: "b", 2: "c"}


def test_file_holds_no_pickled_objects(tmp_path):
    model, _, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[key].dtype != object for key in archive.files)
        config = json.loads(archive["__config__"].tobytes())
    assert config["format"] == saving.FORMAT_NAME and config["model"]["layers"][1]["class_name"] == "Dense"


def test_save_is_atomic_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    model, x, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(saving.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m.npz")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left behind


def test_truncated_file_gives_a_clear_error(tmp_path):
    model, _, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(saving.ModelFileError, match=r"m\.npz: not a readable NeuralNetworks model file"):
        models.load(path)


def test_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(saving.ModelFileError, match=r"notes.npz: not a NeuralNetworks model file \(expected a .npz archive\)"):
        models.load(path)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(saving.ModelFileError, match="plain.npz: not a NeuralNetworks model file"):
        models.load(tmp_path / "plain.npz")
    with pytest.raises(saving.ModelFileError, match="missing.npz: no such model file"):
        models.load(tmp_path / "missing.npz")


def rewrite(path, edit_config=None, edit_arrays=None):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(arrays.pop("__config__").tobytes())
    if edit_config:
        edit_config(config)
    if edit_arrays:
        edit_arrays(arrays)
    saving.write(path, config, arrays)


@pytest.mark.parametrize(
    ("edit_config", "edit_arrays", "message"),
    [
        (lambda c: c["model"]["layers"][1].update(class_name="Evil"), None, r"unknown layer class 'Evil'; known: Dense"),
        (None, lambda a: a.update({"dense_1/kernel": np.zeros((8, 4), np.float32)}),
         r"shape mismatch for dense_1/kernel"),
        (None, lambda a: a.pop("dense_2/bias"), r"missing: \['dense_2/bias'\]"),
        (None, lambda a: a.update({"dense_1/kernel": np.full((8, 8), np.nan, np.float32)}), r"finite"),
        (lambda c: c.update(version=99), None, r"format version 99 is not supported"),
        (lambda c: c["model"]["layers"][1]["config"].update(units="many"), None, r"invalid model file"),
    ],
    ids=["unknown-layer", "shape", "missing-weight", "nan-weight", "version", "bad-config"],
)
def test_tampered_files_are_rejected_with_the_reason(tmp_path, edit_config, edit_arrays, message):
    model, _, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    rewrite(path, edit_config, edit_arrays)
    with pytest.raises(saving.ModelFileError, match=message):
        models.load(path)


def test_saving_an_unbuilt_model_is_refused(tmp_path):
    model = models.Sequential()
    model.add(layers.Dense(3))
    with pytest.raises(RuntimeError, match="not built"):
        model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("name", ["doodles", "digits"])
def test_the_shipped_pretrained_models_still_load_and_save_alike(tmp_path, name):
    from pathlib import Path

    import NeuralNetworks

    shipped = Path(NeuralNetworks.__file__).parent / "pretrained" / f"{name}.npz"
    if not shipped.exists():
        pytest.skip("the shipped pretrained models are not there")
    model = models.load(shipped)
    assert model.built and model.labels and model.optimizer is not None
    label, scores = model(data=np.zeros(model.input_shape, np.float32))
    assert label in scores and len(scores) == model.output_shape[0]
    copy = model.save(tmp_path / name)
    with np.load(shipped, allow_pickle=False) as before, np.load(copy, allow_pickle=False) as after:
        assert sorted(before.files) == sorted(after.files)  # same "layer/param" and "optimizer/..." keys
        for key in before.files:
            if key != saving.CONFIG_KEY:
                np.testing.assert_array_equal(after[key], before[key].astype(after[key].dtype), err_msg=key)


def test_save_model_and_load_model_are_the_pair_behind_save_and_load(tmp_path):
    model, x, _ = trained_model()
    path = saving.save_model(model, tmp_path / "pair")
    loaded = saving.load_model(path, models.Sequential)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for slot in ("m", "v"):
        np.testing.assert_array_equal(loaded.optimizer.slots[0][slot], model.optimizer.slots[0][slot])


def test_save_takes_the_path_once(tmp_path):
    model, _, _ = trained_model()
    assert model.save(model_dir=tmp_path / "a", labels=["x", "y", "z"]) == tmp_path / "a.npz"
    assert model.save(filepath=tmp_path / "b") == tmp_path / "b.npz"
    with pytest.raises(TypeError, match=r"model.save\(filepath\) or model.save\(model_dir=...\)"):
        model.save()
    with pytest.raises(TypeError, match="takes the file path once"):
        model.save(tmp_path / "c", model_dir=tmp_path / "d")


def test_an_optimizer_entry_for_no_parameter_is_rejected(tmp_path):
    model, _, _ = trained_model()
    path = model.save(tmp_path / "m.npz")
    rewrite(path, edit_arrays=lambda a: a.update({"optimizer/dense_9/kernel/m": np.zeros(3, np.float32)}))
    with pytest.raises(saving.ModelFileError, match=r"unexpected optimizer entry optimizer/dense_9/kernel/m"):
        models.load(path)
