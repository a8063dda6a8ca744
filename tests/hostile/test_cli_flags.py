"""The command line on out-of-domain flags, unwritable outputs and hostile files: one line ``error: ...`` on stderr
and exit status 2, before any data is loaded or any training starts; never a traceback, never a silent default."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from NeuralNetworks import cli
from NeuralNetworks.nn import layers, models


def png(width: int, height: int, mode: int = 0, bit_depth: int = 8, data: bytes = b"\0" * 64) -> bytes:
    """A PNG whose header declares ``width`` x ``height``, whatever pixel data follows (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=(28, 28, 1)))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    return model.save(tmp_path_factory.mktemp("cli") / "m.npz", labels=["a", "b", "c"])


def fails(argv, pattern, capsys, monkeypatch=None):
    if monkeypatch is not None:  # nothing may train or load data before the flags are judged
        monkeypatch.setattr(cli.catalog.DatasetSpec, "load", lambda *a, **k: pytest.fail("data loaded"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert pattern in err or re.search(pattern, err), err


@pytest.mark.parametrize(("argv", "pattern"), [
    (["train", "--epochs", "0"], "--epochs must be a positive integer"),
    (["train", "--epochs", "-3"], "--epochs must be a positive integer"),
    (["train", "--epochs", str(10**30)], "--epochs must be a positive integer at most 100000"),
    (["train", "--epochs", "nan"], "invalid int value: 'nan'"),
    (["train", "--epochs", "inf"], "invalid int value: 'inf'"),
    (["train", "--epochs", "1.5"], "invalid int value"),
    (["train", "--batch", "0"], "--batch must be a positive integer"),
    (["train", "--batch", str(2**40)], "--batch must be a positive integer at most"),
    (["train", "--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    (["train", "--lr", "-0.1"], "--lr must be a positive finite number"),
    (["train", "--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["train", "--lr", "inf"], "--lr must be a positive finite number, got inf"),
    (["train", "--lr", "1e999"], "--lr must be a positive finite number, got inf"),
    (["train", "--patience", "-1"], "--patience must be an integer from 0 to"),
    (["train", "--threads", "0"], "--threads must be a positive integer"),
    (["train", "--threads", "100000"], "--threads must be a positive integer at most 1024"),
    (["train", "--seed", "-1"], "--seed must be an integer from 0 to"),
    (["train", "--seed", str(2**70)], "--seed must be an integer from 0 to"),
    (["inspect", "--model", "m.npz", "--batch", "-1"], "--batch must be a positive integer"),
    (["inspect", "--model", "m.npz", "--batch", "0"], "--batch must be a positive integer"),
    (["app", "--port", "0"], "--port must be a positive integer at most 65535"),
    (["app", "--port", "70000"], "--port must be a positive integer at most 65535"),
    (["app", "--port", "-1"], "--port must be a positive integer"),
    (["train", "--arch", "resnet"], "invalid choice: 'resnet'"),
    (["nope"], "invalid choice: 'nope'"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_numeric_flags_out_of_their_domain(argv, pattern, capsys, monkeypatch):
    if pattern.startswith("invalid") or pattern.startswith("unrecognized"):
        with pytest.raises(SystemExit) as caught:
            cli.main(argv)
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and pattern in err, err
        return
    fails(argv, pattern, capsys, monkeypatch)


@pytest.mark.parametrize(("max_per_class", "pattern"), [("0", "samples_per_class"), ("-4", "samples_per_class"),
                                                        ("1000000000", "more than the budget's max_dataset_bytes"),
                                                        ("2", "16 training and 0 test images, too few to train")])
def test_max_per_class_is_never_no_limit(max_per_class, pattern, capsys):
    fails(["train", "--max-per-class", max_per_class], pattern, capsys)


def test_output_paths_that_cannot_be_written(tmp_path, model_file, capsys, monkeypatch):
    (tmp_path / "folder").mkdir()
    fails(["train", "--plot", str(tmp_path / "folder")], "--plot", capsys, monkeypatch)
    (tmp_path / "file").write_text("x")
    fails(["train", "--out", str(tmp_path / "file" / "m.npz")], r"--out .*file is not a folder", capsys, monkeypatch)
    fails(["train", "--checkpoint", str(tmp_path / "file" / "c.npz")], r"--checkpoint .*file is not a folder", capsys,
          monkeypatch)
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o555)
    if not os.access(locked, os.W_OK):  # root may write anywhere
        fails(["train", "--out", str(locked / "m.npz")], r"the folder .*read-only is not writable", capsys,
              monkeypatch)
    fails(["test", "--model", str(model_file), "--confusion", str(tmp_path / "folder")], "--confusion", capsys,
          monkeypatch)
    fails(["export", "--model", str(model_file), "--format", "web", "--out", str(tmp_path / "file")],
          "expected a folder, found a file", capsys)
    fails(["export", "--model", str(model_file), "--format", "onnx", "--out", str(tmp_path / "folder")],
          "expected a file name, found a folder", capsys)


def test_hostile_files_through_the_commands(tmp_path, model_file, capsys):
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "bomb.png").write_bytes(png(12000, 12000))
    (tmp_path / "fake.png").write_text("not an image")
    (tmp_path / "tiny.png").write_bytes(png(1, 1, data=b"\0\0"))
    (tmp_path / "eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")
    np.save(tmp_path / "cat.npy", np.zeros((4, 784), np.uint8))  # a QuickDraw folder, for --classes
    cases = [(["predict", "--model", str(model_file), str(tmp_path / "fifo.png")], "found a FIFO"),
             (["predict", "--model", str(model_file), str(tmp_path / "bomb.png")],
              "12000x12000 pixels, more than the budget's max_image_pixels"),
             (["predict", "--model", str(model_file), str(tmp_path / "fake.png")], "not an image file"),
             (["predict", "--model", str(model_file), str(tmp_path / "tiny.png")], "too small"),
             (["predict", "--model", str(model_file), str(tmp_path / "eps.png")], "not an image file"),
             (["predict", "--model", str(model_file), str(tmp_path)], "found a folder"),
             (["info", "/dev/zero"], "found a character device"),
             (["info", str(tmp_path / "fifo.png")], "found a FIFO"),
             (["download", "quickdraw", "--classes", "../../x", "--data-dir", str(tmp_path / "d")],
              "`classes` to be a name"),
             (["download", "quickdraw", "--classes", "/abs/path", "--data-dir", str(tmp_path / "d")],
              "`classes` to be a name"),
             (["train", "--dataset", "quickdraw", "--data-dir", str(tmp_path), "--classes", "../x"],
              "`classes` to be a name")]
    for argv, pattern in cases:
        fails(argv, pattern, capsys)
    assert not (tmp_path / "d").exists() and not (tmp_path.parent / "x.npy").exists()


def test_images_of_unusual_kinds_are_read_correctly(tmp_path, model_file, capsys):
    ink = np.zeros((64, 64), np.uint8)
    ink[16:48, 30:34] = 255
    Image.fromarray(ink.astype(np.uint16) * 257).save(tmp_path / "16bit.png")
    Image.fromarray(ink).convert("CMYK").save(tmp_path / "cmyk.jpg")
    palette = Image.fromarray(ink).convert("P")
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    frames = [Image.fromarray(ink), Image.fromarray(255 - ink)]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    def scores(name):
        assert cli.main(["predict", "--model", str(model_file), str(tmp_path / name)]) == 0
        return [float(word.rstrip(",)")) for word in capsys.readouterr().out.split("(")[1].split()[1::2]]

    expected = scores("palette.png")
    for name in ("16bit.png", "cmyk.jpg", "animated.gif"):  # the same drawing, the same answer (JPEG: nearly)
        np.testing.assert_allclose(scores(name), expected, atol=0.005, err_msg=name)


def test_a_real_run_prints_one_line_and_no_traceback(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png(12000, 12000))
    run = subprocess.run([sys.executable, "-m", "NeuralNetworks", "info", str(tmp_path / "bomb.png")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
