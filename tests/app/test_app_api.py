"""The app's HTTP interface through FastAPI's test client: the page, the JSON API, the form post, bad input."""

from __future__ import annotations

import base64
import io
import re
import socket

import numpy as np
import pytest
from app_test_models import DIGIT_LABELS, DOODLE_LABELS, save_untrained
from PIL import Image

from NeuralNetworks import serving
from NeuralNetworks.app import create_app, registry, server
from NeuralNetworks.app.inputs import MAX_IMAGE_SIDE
from NeuralNetworks.app.limits import MAX_BODY_BYTES
from NeuralNetworks.data.images import MAX_POINTS, preprocess_image, render_strokes, render_strokes_mnist
from NeuralNetworks.nn import layers, models, saving

TRIANGLE = [[[10, 80], [50, 10], [90, 80], [10, 80]]]
ONE = [[[50, 10], [50, 90]]]


def png_data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def canvas_png(size: int = 300, mode: str = "L") -> Image.Image:
    """A browser-like canvas: a black triangle on white (or on a transparent background for RGBA)."""
    from PIL import ImageDraw

    image = Image.new(mode, (size, size), "white" if mode != "RGBA" else (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(30, 250), (150, 40), (270, 250), (30, 250)], fill="black", width=12)
    return image


def assert_json_error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert re.search(pattern, response.json()["error"], re.IGNORECASE), response.json()


# -- the page and the models ------------------------------------------------------------------------------
def test_page_and_its_assets_are_served_by_the_app_itself(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="pad"' in page.text and 'id="preview"' in page.text and 'id="model"' in page.text
    assert "<!--server-result-->" not in page.text
    for asset, kind in [("/static/app.js", "javascript"), ("/static/style.css", "text/css"),
                        ("/static/favicon.svg", "image/svg+xml")]:
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert not re.search(r"(https?:)?//[a-z]", response.text.replace("http://www.w3.org/2000/svg", ""))
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no CDN: everything is local
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_models_lists_names_labels_and_preprocessing_style(client):
    assert client.get("/api/models").json() == [
        {"name": "doodles", "labels": DOODLE_LABELS, "style": "quickdraw"},
        {"name": "digits", "labels": DIGIT_LABELS, "style": "mnist"},
    ]


def test_openapi_description_documents_the_prediction_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/models", "/doodle"} <= set(spec["paths"])


# -- predictions --------------------------------------------------------------------------------------------
def check_prediction(body: dict, labels: list[str], preview: np.ndarray) -> None:
    assert body["label"] == body["scores"][0]["label"] and body["label"] in labels
    probabilities = [score["probability"] for score in body["scores"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)
    assert np.array_equal(np.asarray(body["preview"]), preview)


def test_strokes_are_rendered_in_the_models_style_and_classified(client, model_files):
    doodle = client.post("/api/predict", json={"model": "doodles", "strokes": TRIANGLE})
    assert doodle.status_code == 200
    check_prediction(doodle.json(), DOODLE_LABELS, render_strokes(TRIANGLE))
    expected = models.load(model_files["doodles"])(data=render_strokes(TRIANGLE).astype(np.float32))
    assert doodle.json()["label"] == expected[0]
    assert doodle.json()["scores"][0]["probability"] == pytest.approx(expected[1][expected[0]])
    digit = client.post("/api/predict", json={"model": "digits", "strokes": ONE})
    check_prediction(digit.json(), DIGIT_LABELS, render_strokes_mnist(ONE))
    assert digit.json()["style"] == "mnist"


def test_the_first_model_is_the_default(client):
    assert client.post("/api/predict", json={"strokes": TRIANGLE}).json()["model"] == "doodles"


@pytest.mark.parametrize(("mode", "fmt"), [("L", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG")])
def test_image_data_urls_are_preprocessed_like_uploads(client, mode, fmt):
    image = canvas_png(mode=mode)
    response = client.post("/api/predict", json={"model": "digits", "image": png_data_url(image, fmt)})
    assert response.status_code == 200, response.text
    decoded = Image.open(io.BytesIO(base64.b64decode(png_data_url(image, fmt).split(",", 1)[1])))
    check_prediction(response.json(), DIGIT_LABELS, preprocess_image(decoded, style="mnist"))


def test_pixels_are_given_to_the_model_as_they_are(client):
    pixels = render_strokes(TRIANGLE)
    response = client.post("/api/predict", json={"pixels": pixels.tolist()})
    check_prediction(response.json(), DOODLE_LABELS, pixels)


def test_form_post_answers_the_page_with_the_result(client):
    response = client.post("/doodle", data={"img": png_data_url(canvas_png())}, headers={"accept": "text/html"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    result = re.search(r'<section class="server-result".*?</section>', response.text, re.DOTALL).group(0)
    assert re.search(r"doodles says: <em>(apple|diamond|fish|house)</em>", result)
    assert result.count("<li>") == 3 and 'src="data:image/png;base64,' in result
    assert 'id="pad"' in response.text  # the whole page, ready to draw again
    digits = client.post("/doodle", data={"img": png_data_url(canvas_png()), "model": "digits"})
    assert "digits says:" in digits.text


# -- bad input: always a 4xx JSON error with a message, never a 500 ------------------------------------------
def truncated_png() -> str:
    payload = base64.b64decode(png_data_url(canvas_png(mode="RGB")).split(",", 1)[1])
    return "data:image/png;base64," + base64.b64encode(payload[: len(payload) // 2]).decode("ascii")


def blank(mode: str = "RGB", size: int = 200) -> str:
    return png_data_url(Image.new(mode, (size, size), "white" if mode == "RGB" else (0, 0, 0, 0)))


@pytest.mark.parametrize(("body", "status", "pattern"), [
    ({"strokes": []}, 422, "draw something"),
    ({"strokes": [[[5, 5]]]}, 422, "draw something"),
    ({"strokes": [[], []]}, 422, "draw something"),
    ({"image": blank("RGB")}, 422, "draw something"),
    ({"image": blank("RGBA")}, 422, "draw something"),
    ({"pixels": [[0] * 28] * 28}, 422, "draw something"),
    ({"image": "data:image/png;base64," + base64.b64encode(b"hello").decode()}, 400, "not a readable image"),
    ({"image": "data:text/plain;base64," + base64.b64encode(b"hello").decode()}, 400, "must be a data URL"),
    ({"image": "hello"}, 400, "must be a data URL"),
    ({"image": "data:image/png;base64,***"}, 400, "invalid base64"),
    ({"image": truncated_png()}, 400, "truncated or corrupt"),
    ({"image": png_data_url(Image.new("L", (1, 1)))}, 400, "too small"),
    ({"image": png_data_url(Image.new("L", (5000, 5000)))}, 400, f"too large.*{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}"),
    ({"pixels": [[0] * 27] * 28}, 400, r"28x28 array. Received shape \(28, 27\)"),
    ({"pixels": [[300] * 28] * 28}, 400, "from 0 .* to 255"),
    ({"strokes": [[[i % 7, i % 5] for i in range(MAX_POINTS + 1)]]}, 400, f"more than {MAX_POINTS} points"),
    ({"strokes": [[[0, 0, 0], [1, 1, 1]]]}, 422, "strokes"),
    ({"strokes": "circle"}, 422, "strokes"),
    ({"strokes": [[["a", "b"], [1, 1]]]}, 422, "strokes"),
    ({"img": png_data_url(canvas_png())}, 422, "exactly one of .*none of them"),
    ({"strokes": TRIANGLE, "pixels": [[0] * 28] * 28}, 422, "exactly one of .*strokes, pixels"),
    ({"model": "cats", "strokes": TRIANGLE}, 422, "Unknown model 'cats'. Expected one of: doodles, digits"),
    ([1, 2, 3], 422, "Invalid request"),
])
def test_bad_predict_requests_get_a_4xx_json_error(client, body, status, pattern):
    assert_json_error(client.post("/api/predict", json=body), status, pattern)


@pytest.mark.parametrize(("content", "headers", "status", "pattern"), [
    (b'{"strokes": [[[0, NaN], [1, 1]]]}', {"content-type": "application/json"}, 400, "NaN or infinite"),
    (b'{"strokes": [[[0, 0], [1e400, 1]]]}', {"content-type": "application/json"}, 400, "NaN or infinite"),
    (b'{"strokes": [[[0, 0]', {"content-type": "application/json"}, 422, "JSON"),
    (b"\x89PNG\r\n\x1a\n", {"content-type": "image/png"}, 422, "Invalid request"),
    (b"", {}, 422, "Invalid request"),
])
def test_malformed_bodies_get_a_4xx_json_error(client, content, headers, status, pattern):
    assert_json_error(client.post("/api/predict", content=content, headers=headers), status, pattern)


def test_a_50_mb_body_is_refused_from_its_length_and_a_streamed_one_while_it_streams(client):
    huge = b"x" * (50 * 1024 * 1024)
    assert_json_error(client.post("/api/predict", content=huge), 413, "too large")
    assert_json_error(client.post("/doodle", content=huge), 413, "too large")
    chunks_sent = 0

    def stream():  # no Content-Length: the app must stop reading once the cap is passed
        nonlocal chunks_sent
        for _ in range(50 * 16):
            chunks_sent += 1
            yield b"x" * 65536

    assert_json_error(client.post("/api/predict", content=stream()), 413, "too large")
    just_under = b'{"strokes": [], "pad": "' + b"x" * (MAX_BODY_BYTES - 100) + b'"}'
    assert_json_error(client.post("/api/predict", content=just_under, headers={"content-type": "application/json"}),
                      422, "draw something")  # under the cap, the body is read and judged on its content


@pytest.mark.parametrize(("form", "status", "pattern"), [
    ({}, 422, "Missing form field `img`"),
    ({"image": "data:image/png;base64,AAAA"}, 422, "Missing form field `img`"),
    ({"img": "not a data url"}, 400, "must be a data URL"),
    ({"img": blank("RGB")}, 422, "draw something"),
    ({"img": png_data_url(canvas_png()), "model": "cats"}, 422, "Unknown model 'cats'"),
])
def test_bad_form_posts_get_json_errors_or_the_page_with_the_error(client, form, status, pattern):
    assert_json_error(client.post("/doodle", data=form), status, pattern)
    page = client.post("/doodle", data=form, headers={"accept": "text/html,*/*"})
    assert page.status_code == status and page.headers["content-type"].startswith("text/html")
    assert re.search(f'<p class="error">[^<]*({pattern})', page.text.replace("&#x27;", "'"))


def test_a_form_field_over_the_form_parsers_part_limit_gets_a_json_error(client):
    oversized = "data:image/png;base64," + "A" * (1536 * 1024)  # under the body cap, over a form part's limit
    assert_json_error(client.post("/doodle", files={"img": (None, oversized)}), 400, "exceeded maximum size")
    assert_json_error(client.post("/doodle", data={"img": oversized}), 400, "exceeded maximum size")


def test_unknown_routes_and_methods_get_json_errors(client):
    assert_json_error(client.get("/nope"), 404, "not found")
    assert_json_error(client.get("/api/predict"), 405, "method not allowed")


# -- start-up: models, styles, run() ------------------------------------------------------------------------
def test_model_files_are_checked_when_the_app_is_created(tmp_path, model_files):
    with pytest.raises(saving.ModelFileError, match="no such model file"):
        create_app({"doodles": tmp_path / "missing.npz"})
    wrong = models.Sequential(seed=0)
    wrong.add(layers.Dense(3, input_shape=(10,)))
    with pytest.raises(ValueError, match=r"feeds 28x28 images, but model 'wrong' expects input shape \(10,\)"):
        create_app({"wrong": wrong.save(tmp_path / "wrong.npz")})
    with pytest.raises(ValueError, match="No model to serve"):
        create_app({})


def test_style_comes_from_the_file_when_it_declares_one(tmp_path):
    path = save_untrained(tmp_path / "letters.npz", ["a", "b"])
    assert serving.load_model(path, "letters").style == "quickdraw"
    _, config, arrays = saving.read(path)
    saving.write(path, {**config, "preprocessing": "mnist"}, arrays)
    assert serving.load_model(path, "letters").style == "mnist"
    assert serving.style_for(DIGIT_LABELS) == "mnist" and serving.style_for(["1", "0"]) == "quickdraw"


def test_extra_model_files_are_named_by_their_stem(tmp_path, model_files):
    paths = registry.model_paths([model_files["digits"], tmp_path / "cats.npz"], base={"digits": model_files["digits"]})
    assert list(paths) == ["digits", "digits-2", "cats"]


def test_run_prints_the_address_and_serves_without_reload(monkeypatch, capsys, model_files, tmp_path):
    calls = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append((app, options)))
    extra = save_untrained(tmp_path / "cats.npz", ["cat", "dog"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server.run(port=port, model_paths={"doodles": model_files["doodles"]}, extra_models=[extra])
    app, options = calls[0]
    assert list(app.state.models) == ["doodles", "cats"]
    assert options["host"] == "127.0.0.1" and options["port"] == port and options["reload"] is False
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out


def test_run_refuses_a_port_in_use_or_out_of_range_before_serving(monkeypatch, model_files):
    monkeypatch.setattr("uvicorn.run", lambda app, **options: pytest.fail("must not serve"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"Cannot serve on 127.0.0.1:{port}"):
            server.run(port=port, model_paths=model_files)
    with pytest.raises(ValueError, match="from 1 to 65535. Received: port=70000"):
        server.run(port=70000, model_paths=model_files)


def test_each_model_is_served_in_the_static_pages_format(client, model_files):
    import math

    manifest = client.get("/api/models/digits/model.json").json()
    weights = client.get("/api/models/digits/model.bin")
    assert weights.headers["content-type"] == "application/octet-stream"
    assert manifest["labels"] == [str(digit) for digit in range(10)] and manifest["preprocessing"] == "mnist"
    kernel = manifest["layers"][-1]["weights"]["kernel"]
    served = np.frombuffer(weights.content, "<f4", math.prod(kernel["shape"]), kernel["offset"])
    model = models.load(model_files["digits"])
    np.testing.assert_array_equal(served.reshape(kernel["shape"]), model.layers[-1].params["kernel"])
    missing = client.get("/api/models/nope/model.bin")
    assert missing.status_code == 404 and "Unknown model 'nope'" in missing.json()["error"]


def test_the_app_serves_a_functional_model_as_it_serves_a_sequential(tmp_path, test_client_class):
    """A graph with a skip connection, saved and served: the same answer shape and the model's own scores."""
    x = layers.Input(shape=(28, 28, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(layers.Rescaling(1 / 255)(x))
    h = layers.Add()([h, layers.Conv2D(4, 3, padding="same", activation="relu")(h)])
    y = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(h))
    path = models.Model(inputs=x, outputs=y, seed=0).save(tmp_path / "graph.npz", labels=["a", "b", "c"])
    pixels = np.zeros((28, 28))
    pixels[8:20, 8:20] = 255
    with test_client_class(create_app({"graph": path})) as client:
        answer = client.post("/api/predict", json={"model": "graph", "pixels": pixels.tolist()})
    assert answer.status_code == 200, answer.text
    expected = models.load(path).predict(pixels.reshape(1, 28, 28, 1))[0]
    scores = {score["label"]: score["probability"] for score in answer.json()["scores"]}
    assert scores == pytest.approx({label: float(p) for label, p in zip("abc", expected, strict=True)}, rel=1e-5)
