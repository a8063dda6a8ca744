"""The command line through ``main(argv) -> int``: train, test, predict, info, the classic flags and errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from NeuralNetworks import cli, run
from NeuralNetworks.cli import recipe as cli_training
from NeuralNetworks.nn import callbacks, layers, models

SMALL = ["--max-per-class", "60", "--epochs", "3", "--quiet"]
# val_loss per epoch of `NeuralNetworks train` on the built-in set before the fix: from epoch 7 the learning rate
# decays to nothing while val_loss still drops by ~1e-5, which used to reset EarlyStopping's patience every time.
SHAPES_VAL_LOSS = [0.3650, 0.1828, 0.1517, 0.1243, 0.1114, 0.10352, 0.10343, 0.10216, 0.10195, 0.10178, 0.10223,
                   0.10163, 0.10127, 0.10099, 0.10094, 0.10093, 0.10093, 0.10092, 0.10092, 0.10092]


def write_idx(folder, split, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    for kind, array, magic in (("images-idx3", images, 0x803), ("labels-idx1", labels, 0x801)):
        header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
        (folder / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by the CLI on a small built-in shapes set."""
    folder = tmp_path_factory.mktemp("cli")
    out = folder / "shapes.npz"
    assert cli.main(["train", *SMALL, "--out", str(out), "--plot", str(folder / "curves.png")]) == 0
    return out


def test_train_saves_the_model_with_labels_and_plots_curves(trained, capsys):
    assert trained.exists() and (trained.parent / "curves.png").stat().st_size > 0
    model = models.load(trained)
    assert list(model.labels.values())[:4] == ["circle", "square", "triangle", "star"]
    assert cli.main(["info", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "Labels: circle, square, triangle, star" in out and "Total params" in out


@pytest.mark.parametrize("arch", ["digits", "doodles"])
def test_train_builds_the_shipped_presets_with_a_cosine_schedule(arch, tmp_path, capsys):
    from NeuralNetworks.nn import layers, presets

    out = tmp_path / f"{arch}.npz"
    argv = ["train", "--max-per-class", "20", "--epochs", "2", "--quiet", "--arch", arch, "--schedule", "cosine",
            "--lr", "0.002", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "best epoch" not in printed and "Epoch 2/2" in printed  # cosine runs every epoch, keeps the last
    model = models.load(out)
    assert model.get_config()["layers"] == presets.ARCHITECTURES[arch]((28, 28, 1), 8, seed=0).get_config()["layers"]
    assert any(isinstance(layer, layers.RandomImageLayer) for layer in model.layers)
    schedule = model.optimizer.learning_rate  # the cosine reaches 0 exactly at the last training step
    assert schedule.initial_learning_rate == 0.002 and schedule.decay_steps == model.optimizer.iterations


def test_validation_split_zero_trains_on_every_image_with_the_cosine_schedule(tmp_path, capsys):
    out = tmp_path / "all.npz"
    assert cli.main(["train", "--max-per-class", "20", "--epochs", "1", "--quiet", "--schedule", "cosine",
                     "--validation-split", "0", "--batch", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "shapes: 128 training" in printed and "val_loss" not in printed
    assert models.load(out).optimizer.iterations == 128 // 16  # every training image, none held out


def test_no_optimizer_state_saves_a_smaller_file_that_predicts_the_same(trained, tmp_path):
    with_state, without = tmp_path / "with.npz", tmp_path / "without.npz"
    common = ["train", "--max-per-class", "20", "--epochs", "1", "--quiet"]
    assert cli.main([*common, "--out", str(with_state)]) == 0
    assert cli.main([*common, "--no-optimizer-state", "--out", str(without)]) == 0
    full, light = models.load(with_state), models.load(without)
    assert light.optimizer.iterations == 0 < full.optimizer.iterations  # loaded with a fresh optimizer
    assert without.stat().st_size < 0.5 * with_state.stat().st_size  # Adam keeps two moments per weight
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)).astype(np.uint8)
    np.testing.assert_array_equal(light.predict(images), full.predict(images))


def test_arch_names_match_the_presets():
    from NeuralNetworks.nn import presets

    assert cli.ARCHITECTURES == tuple(presets.ARCHITECTURES)


def test_test_reports_accuracy_per_class_and_writes_figures(trained, capsys, tmp_path):
    confusion, samples = tmp_path / "c.png", tmp_path / "s.png"
    assert cli.main(["test", "--model", str(trained), "--max-per-class", "60", "--confusion", str(confusion),
                     "--samples", str(samples)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.5  # 8 classes: far above chance after 3 short epochs
    assert "precision  recall  support" in out and "circle" in out
    assert confusion.stat().st_size > 0 and samples.stat().st_size > 0


def test_predict_prints_label_and_top3(trained, tmp_path, capsys):
    from NeuralNetworks.data import load

    image = load("shapes", samples_per_class=5, seed=1).x_test[0, :, :, 0]
    path = tmp_path / "drawing.png"
    Image.fromarray(255 - image).resize((280, 280)).save(path)  # black ink on white, as a person draws
    assert cli.main(["predict", "--model", str(trained), str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and line.count(",") == 2  # label (three scores)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "missing.npz"], "missing.npz: no such model file"),
        (["train", "--dataset", "mnist", "--data-dir", "{tmp}"], "no MNIST files found"),
        (["train", "--dataset", "quickdraw", "--data-dir", "{tmp}/qd", "--classes", "dog"], "unknown QuickDraw class"),
        (["train", "--dataset", "mnist", "--data-dir", "{tmp}/badmagic"], "magic"),
        (["train", "--epochs", "0"], "--epochs must be a positive integer"),
        (["train", "--dataset", "mnist", "--max-per-class", "5"], "--max-per-class does not apply to mnist"),
        (["train", "--max-per-class", "0"], "samples_per_class"),
        (["train", "--validation-split", "1"], "--validation-split must be a number from 0 (inclusive) to 1"),
        (["train", "--validation-split", "nan"], "--validation-split must be a number from 0 (inclusive) to 1"),
        (["train", "--validation-split", "0"], "--validation-split 0 needs --schedule cosine"),
        (["predict", "--model", "{model}", "{tmp}/not-an-image.png"], "not-an-image.png: not an image file"),
        (["info", "{tmp}/not-a-model.npz"], "not-a-model.npz: not a NeuralNetworks model file"),
    ],
    ids=["missing-model", "missing-data", "unknown-class", "wrong-magic", "bad-epochs", "no-size-option", "zero-size",
         "bad-validation-split", "nan-validation-split", "no-validation-without-cosine", "not-an-image", "not-a-model"],
)
def test_errors_are_one_line_with_exit_status_2(argv, message, tmp_path, trained, capsys):
    (tmp_path / "qd").mkdir()
    np.save(tmp_path / "qd" / "cat.npy", np.zeros((5, 784), np.uint8))
    (tmp_path / "badmagic").mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(tmp_path / "badmagic" / f"{stem}.gz", "wb") as handle:
            handle.write((0x0801).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00")
    (tmp_path / "not-an-image.png").write_text("hello")
    (tmp_path / "not-a-model.npz").write_text("hello")
    argv = [arg.format(tmp=tmp_path, model=trained) for arg in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err


def test_ctrl_c_during_training_saves_the_best_weights_and_exits_130(tmp_path, monkeypatch, capsys):
    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(models.Sequential, "fit", interrupted_fit)
    out = tmp_path / "m.npz"
    assert cli.main(["train", *SMALL, "--out", str(out)]) == 130
    assert models.load(out).labels and "interrupted" in capsys.readouterr().err


def test_no_argument_starts_the_app(monkeypatch):
    from NeuralNetworks.app import server

    calls = []
    monkeypatch.setattr(server, "run", lambda **kwargs: calls.append(kwargs))
    assert cli.main([]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 5000, "extra_models": []}]


def test_classic_flags_translate_to_the_new_commands():
    argv = ["--mode", "train", "--datasets", "mnist", "--epochs", "10", "--lr", "0.01", "--batch", "16",
            "--model_dir", "m.npz"]
    assert run.translate(argv) == ["train", "--dataset", "mnist", "--data-dir", "datasets/mnist",
                                   "--optimizer", "adagrad", "--epochs", "10", "--lr", "0.01", "--batch", "16",
                                   "--out", "m.npz"]
    assert run.translate(["--mode", "test", "--datasets", "doodle", "--model_dir", "m.npz"]) == [
        "test", "--dataset", "quickdraw", "--data-dir", "datasets/doodle", "--model", "m.npz"]
    assert run.translate(["train", "--epochs", "2"]) == ["train", "--epochs", "2"]


def test_classic_doodle_training_runs_from_datasets_doodle(tmp_path, monkeypatch, capsys):
    from NeuralNetworks.data import load

    shapes = load("shapes", samples_per_class=40, seed=0)
    folder = tmp_path / "datasets" / "doodle"
    folder.mkdir(parents=True)
    for index, name in shapes.label_dict.items():
        np.save(folder / f"{name}.npy", shapes.x_train[shapes.y_train == index].reshape(-1, 784))
    monkeypatch.chdir(tmp_path)
    assert run.run(["--mode", "train", "--datasets", "doodle", "--epochs", "1", "--lr", "0.05", "--batch", "16",
                    "--model_dir", "doodle.npz"]) == 0
    assert models.load(tmp_path / "doodle.npz").labels[0] == "circle"
    assert "test accuracy" in capsys.readouterr().out


def test_inspect_prints_a_row_per_layer_and_plots(trained, tmp_path, capsys):
    plot = tmp_path / "inside.png"
    assert cli.main(["inspect", "--model", str(trained), "--max-per-class", "20", "--batch", "8",
                     "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("rescaling_1", "flatten_1", "dense_1", "dense_3")) and "grad" in out
    assert plot.stat().st_size > 0


def test_download_passes_dataset_folder_and_classes(monkeypatch, tmp_path, capsys):
    from NeuralNetworks.data import catalog

    calls = []

    def fake_download(name, data_dir=None, *, classes=None, **options):
        calls.append((name, data_dir, classes))
        return [tmp_path / f"{c}.npy" for c in classes or ["mnist.npz"]]

    monkeypatch.setattr(catalog, "download", fake_download)
    assert cli.main(["download", "quickdraw", "--classes", "cat", "bicycle", "--data-dir", str(tmp_path)]) == 0
    assert calls == [("quickdraw", tmp_path, ["cat", "bicycle"])]
    assert capsys.readouterr().out.splitlines() == [f"ok: {tmp_path / 'cat.npy'}", f"ok: {tmp_path / 'bicycle.npy'}"]


def test_class_table_columns_line_up_for_short_and_long_names():
    for names in (["0", "1"], ["cat", "eye"], ["The Eiffel Tower", "b"]):
        table = cli.class_table(names, np.array([1.0, 0.5]), np.array([0.25, 1.0]), np.array([3, 1200]))
        header, *rows = table.splitlines()
        assert header.split() == ["class", "precision", "recall", "support"] and len(rows) == 2
        for row, name in zip(rows, names, strict=True):
            assert row.startswith(name + "  ") and len(row) == len(header)
            for column in ("precision", "recall", "support"):  # numbers end where their header ends
                end = header.index(column) + len(column)
                assert row[end - 1] != " " and row[end:end + 1] in ("", " ")


def test_train_stops_once_val_loss_gains_are_negligible():
    """The CLI's callbacks on the built-in set's val_loss curve: the old ones ran all 20 epochs, these stop."""
    class ReplayedValLoss(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = SHAPES_VAL_LOSS[epoch]

    def epochs_run(stopping):
        model = models.Sequential(seed=0)
        model.add(layers.Dense(2, activation="softmax", input_shape=(3,)))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
        history = model.fit(x, np.arange(20) % 2, epochs=len(SHAPES_VAL_LOSS), validation_split=0.2, verbose=0,
                            callbacks=[ReplayedValLoss(), *stopping])
        return len(history.history["loss"])

    slower, stopper = cli_training.callbacks_for("plateau", num_classes=8, patience=3)[0]
    assert epochs_run([slower, stopper]) == 11 and stopper.best_epoch == 7  # the weights of epoch 8 are kept
    before = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    assert epochs_run([cli_training.callbacks_for("plateau", 8, 3)[0][0], before]) == len(SHAPES_VAL_LOSS)


@pytest.mark.slow
def test_default_training_stops_early_and_keeps_its_accuracy(tmp_path, capsys):
    assert cli.main(["train", "--quiet", "--out", str(tmp_path / "shapes.npz")]) == 0
    out = capsys.readouterr().out
    stopped = int(out.split("stopped after epoch ")[1].split()[0])
    assert stopped < 20 and float(out.split("test accuracy: ")[1].split()[0]) >= 0.97


def test_train_saves_the_datasets_preprocessing_style(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion"
    for split, count in (("train", 60), ("test", 20)):
        write_idx(folder, split, rng.integers(0, 256, (count, 28, 28)), np.arange(count) % 10)
    out = tmp_path / "fashion.npz"
    assert cli.main(["train", "--dataset", "fashion", "--data-dir", str(folder), "--epochs", "1", "--quiet",
                     "--out", str(out)]) == 0
    assert models.load(out).preprocessing == "mnist"
