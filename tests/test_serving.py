"""The serving path shared by ``NeuralNetworks predict`` and the app: model file -> style -> bitmap -> top-k."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from NeuralNetworks import serving
from NeuralNetworks.data.images import EmptyDrawingError, preprocess_image, render_strokes, render_strokes_mnist
from NeuralNetworks.nn import layers, models

TRIANGLE = [[[100, 300], [200, 100], [300, 300], [100, 300]]]
LABELS = ["apple", "diamond", "fish", "house", "eye"]


def save_model(path, labels, preprocessing=None, input_shape=(28, 28, 1)):
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=input_shape))
    model.add(layers.Flatten())
    model.add(layers.Dense(len(labels), activation="softmax"))
    return model.save(path, labels=labels, preprocessing=preprocessing)


@pytest.fixture
def served(tmp_path):
    return serving.load_model(save_model(tmp_path / "shapes.npz", LABELS))


def test_top_k_is_the_models_best_labels_in_order(served):
    bitmap = served.preprocess(strokes=TRIANGLE)
    probabilities = served.model.predict(bitmap.reshape(1, 28, 28, 1).astype(np.float32))[0]
    expected = [LABELS[i] for i in np.argsort(-probabilities)[:serving.TOP_K]]
    top = served.top_k(bitmap)
    assert [label for label, _ in top] == expected and len(top) == serving.TOP_K == 3
    assert [p for _, p in top] == pytest.approx(sorted(probabilities, reverse=True)[:3])
    assert [label for label, _ in served.top_k(bitmap, k=len(LABELS) + 2)] == [LABELS[i] for i in
                                                                               np.argsort(-probabilities)]


def test_the_name_defaults_to_the_file_stem_and_describe_lists_labels(served):
    assert served.describe() == {"name": "shapes", "labels": LABELS, "style": "quickdraw"}


def test_style_comes_from_the_file_else_from_digit_labels(tmp_path):
    digits = [str(d) for d in range(10)]
    assert serving.load_model(save_model(tmp_path / "d.npz", digits)).style == "mnist"
    assert serving.load_model(save_model(tmp_path / "l.npz", ["a", "b"], "mnist")).style == "mnist"
    assert serving.load_model(save_model(tmp_path / "q.npz", digits, "quickdraw")).style == "quickdraw"
    assert serving.style_for(["1", "0"]) == "quickdraw" and serving.style_for(digits, "bogus") == "mnist"


def test_each_drawing_kind_is_preprocessed_in_the_models_style(tmp_path, served):
    digits = serving.load_model(save_model(tmp_path / "digits.npz", [str(d) for d in range(10)]))
    np.testing.assert_array_equal(served.preprocess(strokes=TRIANGLE), render_strokes(TRIANGLE))
    np.testing.assert_array_equal(digits.preprocess(strokes=TRIANGLE), render_strokes_mnist(TRIANGLE))
    page = Image.new("L", (200, 200), 255)
    page.paste(0, (60, 40, 140, 160))
    np.testing.assert_array_equal(digits.preprocess(image=page), preprocess_image(page, style="mnist"))
    pixels = render_strokes(TRIANGLE)
    np.testing.assert_array_equal(served.preprocess(pixels=pixels.tolist()), pixels)


@pytest.mark.parametrize("drawing, error, message", [
    ({}, TypeError, "exactly one of strokes, image, pixels. Received: none"),
    ({"strokes": TRIANGLE, "pixels": np.zeros((28, 28))}, TypeError, "Received: strokes, pixels"),
    ({"pixels": np.zeros((28, 28))}, EmptyDrawingError, "no ink"),
    ({"pixels": np.zeros((28, 27))}, ValueError, r"28x28 array. Received shape \(28, 27\)"),
    ({"pixels": np.full((28, 28), np.nan)}, ValueError, "finite numbers from 0"),
    ({"pixels": [["a"] * 28] * 28}, ValueError, "array of numbers"),
    ({"strokes": [[[5, 5]]]}, EmptyDrawingError, "draw something"),
])
def test_bad_drawings_raise_errors_that_say_what_was_expected(served, drawing, error, message):
    with pytest.raises(error, match=message):
        served.preprocess(**drawing)


def test_models_that_cannot_take_a_drawing_are_refused_when_loaded(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(3, input_shape=(10,)))
    with pytest.raises(ValueError, match=r"feeds 28x28 images, but model 'small' expects input shape \(10,\)"):
        serving.load_model(model.save(tmp_path / "small.npz"))


def test_read_image_names_the_file_it_cannot_read(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    noise = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "good.png")
    payload = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(payload[: len(payload) // 2])
    assert serving.read_image(tmp_path / "good.png").size == (40, 40)
    for name, message in (("missing.png", "no such image file"), ("notes.png", "not an image file"),
                          ("cut.png", "the image cannot be decoded")):
        with pytest.raises(serving.ImageFileError, match=f"{name}: {message}"):
            serving.read_image(tmp_path / name)


def test_serving_and_the_command_line_do_not_import_the_web_framework():
    code = ("import sys, NeuralNetworks.cli, NeuralNetworks.serving; "
            "sys.exit(' '.join(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn')) or None)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def blas_thread_counts() -> set[int]:
    from threadpoolctl import ThreadpoolController

    return {info["num_threads"] for info in ThreadpoolController().info() if info["user_api"] == "blas"}


def test_concurrent_requests_on_two_models_leave_the_process_blas_threads_alone(tmp_path):
    """The BLAS thread count is the process's: requests in threads never change it, so two models served at
    once cannot undo each other's limit and leave the server on one thread (they did, per request)."""
    from concurrent.futures import ThreadPoolExecutor

    threadpoolctl = pytest.importorskip("threadpoolctl")
    wide = []
    for name in ("one", "two"):  # 784 -> 256: a product one BLAS thread would be chosen for, in the main thread
        model = models.Sequential(seed=0)
        model.add(layers.Flatten(input_shape=(28, 28, 1)))
        model.add(layers.Dense(256, activation="relu"))
        model.add(layers.Dense(len(LABELS), activation="softmax"))
        wide.append(serving.load_model(model.save(tmp_path / f"{name}.npz", labels=LABELS)))
    bitmap = wide[0].preprocess(strokes=TRIANGLE)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_thread_counts()
        seen = []

        def ask(index: int) -> list:
            seen.append(blas_thread_counts())
            with wide[index % 2].model.blas_threads(1) as limited:
                assert limited is None  # a null context: nothing is flipped off the main thread
            return wide[index % 2].top_k(bitmap)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(200)))
        assert blas_thread_counts() == before
        assert all(counts == before for counts in seen)
    assert answers[0] == answers[2] and answers[1] == answers[3]
