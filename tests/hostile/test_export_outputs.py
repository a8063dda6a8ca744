"""Where an export may write: exactly the ``--out`` it is given. An empty ``--out`` is refused (it is not the
current folder), a ``static`` link inside the page's folder receives nothing, and a path through ``..`` creates
no stray folder on the way."""

from __future__ import annotations

import pytest

from NeuralNetworks import export
from NeuralNetworks.cli import main
from NeuralNetworks.nn import layers, models


@pytest.fixture
def model_file(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Flatten(input_shape=(28, 28)))
    model.add(layers.Dense(3, activation="softmax"))
    return model.save(tmp_path / "letters.npz", labels=["a", "b", "c"])


@pytest.mark.parametrize("out", ["", " "])
@pytest.mark.parametrize("format_", ["web", "onnx"])
def test_an_empty_out_is_refused_not_the_current_folder(tmp_path, monkeypatch, capsys, model_file, out, format_):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit) as exited:
        main(["export", "--model", str(model_file), "--format", format_, "--out", out])
    assert exited.value.code == 2 and "expected a file or folder name" in capsys.readouterr().err
    assert list(work.iterdir()) == []


def test_a_static_link_in_the_page_folder_receives_nothing(tmp_path, model_file):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    (site / "static").symlink_to(elsewhere)
    with pytest.raises(export.ExportError, match=r"static is a link or not a folder"):
        export.to_web(models.load(model_file), site)
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in site.iterdir()) == ["static"]


@pytest.mark.parametrize("format_, name", [("web", "site"), ("onnx", "m.onnx")])
def test_an_out_through_dot_dot_creates_no_stray_folder(tmp_path, monkeypatch, model_file, format_, name):
    if format_ == "onnx":
        pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", str(model_file), "--format", format_, "--out", f"new/../{name}"]) == 0
    assert (tmp_path / name).exists() and not (tmp_path / "new").exists()
