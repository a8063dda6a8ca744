"""The command line on your own data, as a user runs it: a folder of drawings and a CSV table, from train to
test, info, predict (text and --json) and export (ONNX through onnxruntime applies the stored preprocessing)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from NeuralNetworks.cli import main
from NeuralNetworks.data import folder
from NeuralNetworks.nn import models
from own_data_support import make_drawings, make_table

FOLDER_TRAINING = ["--epochs", "3", "--quiet", "--batch", "8", "--image-size", "24", "24"]


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """A folder of drawings and the model ``train --data-dir`` made of it (its printout too)."""
    root = tmp_path_factory.mktemp("own")
    drawings = make_drawings(root / "drawings", per_class=15)
    out = root / "shapes.npz"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["train", "--data-dir", str(drawings), "--out", str(out), "--csv-log", str(root / "log.csv"),
                       "--class-weight", "balanced", *FOLDER_TRAINING])
    assert status == 0
    return drawings, out, printed.getvalue()


def test_train_on_a_folder_reports_what_it_did_and_saves_the_preprocessing(trained_folder):
    drawings, out, printed = trained_folder
    assert "folder: 33 training and 9 test images, 3 classes (circle, line, square)" in printed
    assert "note: skipped 2 hidden or non-image file(s)" in printed and "unreadable" in printed
    assert "inverted to white ink on black" in printed
    assert "test accuracy: " in printed
    model = models.load(out)
    assert model.preprocessing == {"kind": "image", "height": 24, "width": 24, "channels": 1, "invert": True}
    assert model.name == "cnn" and len(model.history.history["loss"]) >= 1
    assert (out.parent / "log.csv").read_text().startswith("epoch,loss,accuracy,val_loss")


def test_info_shows_the_preprocessing_and_the_history(trained_folder, capsys):
    _, out, _ = trained_folder
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Preprocessing: images resized to 24x24, grayscale, inverted" in printed
    assert "Training history (" in printed and "val_accuracy" in printed


def test_test_scores_the_held_back_split_or_another_folder_of_some_of_its_classes(trained_folder, tmp_path,
                                                                                   capsys):
    drawings, out, _ = trained_folder
    assert main(["test", "--model", str(out), "--data-dir", str(drawings),
                 "--confusion", str(tmp_path / "c.png"), "--samples", str(tmp_path / "s.png")]) == 0
    assert "test accuracy: " in capsys.readouterr().out
    other = make_drawings(tmp_path / "other", per_class=5, seed=9, classes=("circle", "square"))
    assert main(["test", "--model", str(out), "--data-dir", str(other), "--whole",
                 "--confusion", str(tmp_path / "c.png"), "--samples", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert "on 10 folder images" in printed and "line" in printed  # a subset of the labels is fine
    unknown = make_drawings(tmp_path / "unknown", per_class=3, classes=("circle", "star"))
    assert main(["test", "--model", str(out), "--data-dir", str(unknown), "--whole"]) == 2
    assert "the class 'star' is not one of the model's labels" in capsys.readouterr().err


def test_predict_prints_labels_or_a_json_list_with_every_score(trained_folder, capsys):
    drawings, out, _ = trained_folder
    files = sorted((drawings / "circle").glob("*.png"))[:2]
    assert main(["predict", "--model", str(out), *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{files[0]}: ")
    assert main(["predict", "--model", str(out), "--json", *map(str, files)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [result["file"] for result in results] == list(map(str, files))
    assert set(results[0]["scores"]) == {"circle", "line", "square"}
    assert sum(results[0]["scores"].values()) == pytest.approx(1, abs=1e-5)
    assert results[0]["label"] == max(results[0]["scores"], key=results[0]["scores"].get)


def test_the_onnx_export_with_its_stored_preprocessing_predicts_what_the_model_does(trained_folder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import onnx

    drawings, out, _ = trained_folder
    assert main(["export", "--model", str(out), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    properties = {entry.key: entry.value for entry in onnx.load(tmp_path / "m.onnx").metadata_props}
    spec = json.loads(properties["preprocessing"])
    files = sorted(drawings.glob("*/*.*"))[:12]
    x = np.stack([folder.read_sample(path, spec) for path in files if path.suffix != ".txt"
                  and not path.name.startswith((".", "broken"))]).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    exported = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(exported, models.load(out).predict(x), atol=1e-5)


def test_a_table_trains_tests_and_predicts_from_the_command_line(tmp_path, capsys):
    table = make_table(tmp_path / "things.csv")
    out = tmp_path / "kind.npz"
    assert main(["train", "--data", str(table), "--target", "kind", "--out", str(out), "--epochs", "30",
                 "--quiet", "--batch", "16"]) == 0
    printed = capsys.readouterr().out
    assert "csv: 173 training and 48 test rows, 2 classes (big, small)" in printed
    accuracy = float(printed.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.8
    assert main(["test", "--model", str(out), "--data", str(table)]) == 0
    assert f"test accuracy: {accuracy:.4f} on 48 rows" in capsys.readouterr().out
    new = tmp_path / "new.csv"
    new.write_text("colour,size,weight,price\nred,14,60,80\nblue,6,40,30\n")
    assert main(["predict", "--model", str(out), str(new)]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["row", "kind", "p(big)", "p(small)"] and [row[1] for row in rows[1:]] == ["big", "small"]
    assert main(["predict", "--model", str(out), "--json", str(new)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "big"
    new.write_text("colour,size,weight,price\nred,14,60,80\npurple,6,40,30\n")
    assert main(["predict", "--model", str(out), str(new)]) == 2
    assert "row 2, column 'colour': unseen category 'purple'" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    assert "table: classification of 'kind' from 4 columns" in capsys.readouterr().out


def test_a_float_target_trains_a_regressor_reported_by_r_squared(tmp_path, capsys):
    table = make_table(tmp_path / "things.csv", missing=False)
    out = tmp_path / "price.npz"
    assert main(["train", "--data", str(table), "--target", "price", "--out", str(out), "--epochs", "60",
                 "--quiet", "--batch", "16", "--dropna", "--schedule", "cosine"]) == 0
    printed = capsys.readouterr().out
    assert "regression" in printed and float(printed.split("test R²: ")[1].split()[0]) > 0.8
    assert main(["predict", "--model", str(out), str(table)]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["row", "price"] and len(rows) == 241


@pytest.mark.parametrize("arguments, message", [
    (["train", "--data", "{table}"], "--data needs --target COLUMN"),
    (["train", "--data", "{table}", "--target", "nope"], "no column 'nope' to predict"),
    (["train", "--data", "{table}", "--target", "kind", "--dataset", "mnist"], "does not go with --dataset"),
    (["train", "--data-dir", "{one}"], "a classifier needs at least 2 classes"),
])
def test_data_that_cannot_be_trained_on_is_refused_up_front(tmp_path, capsys, arguments, message):
    table = make_table(tmp_path / "t.csv", rows=30)
    one = make_drawings(tmp_path / "one", per_class=3, classes=("circle",))
    filled = [argument.format(table=table, one=one) for argument in arguments]
    assert main([*filled, "--out", str(tmp_path / "m.npz")]) == 2
    assert message in capsys.readouterr().err


def test_a_shipped_model_is_named_by_its_name(capsys):
    from NeuralNetworks.app.registry import SHIPPED_MODELS

    if not SHIPPED_MODELS["digits"].is_file():
        pytest.skip("the shipped digits model is absent")
    assert main(["info", "digits"]) == 0
    assert "mnist drawing style" in capsys.readouterr().out


def test_a_shipped_drawing_model_tests_a_folder_in_its_own_style(tmp_path, capsys):
    from NeuralNetworks.app.registry import SHIPPED_MODELS

    if not SHIPPED_MODELS["doodles"].is_file():
        pytest.skip("the shipped doodles model is absent")
    drawings = make_drawings(tmp_path / "drawings", per_class=4, classes=("fish", "house"), side=64)
    assert main(["test", "--model", "doodles", "--data-dir", str(drawings), "--whole",
                 "--confusion", str(tmp_path / "c.png"), "--samples", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert "on 8 folder images" in printed and "apple" in printed  # cropped and centred like predict does
