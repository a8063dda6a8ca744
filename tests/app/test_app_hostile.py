"""Hostile requests to the app: each gets a 4xx JSON error naming what was wrong, never a 5xx, a null score or a
connection held open forever."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from app_test_models import DOODLE_LABELS, save_untrained

from NeuralNetworks.app import create_app
from NeuralNetworks.budget import Budget
from NeuralNetworks.nn import layers, models

TRIANGLE = [[[10, 80], [50, 10], [90, 80], [10, 80]]]


def post(client, body: bytes | dict, content_type: str = "application/json"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/predict", content=content, headers={"content-type": content_type})


def json_error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert re.search(pattern, response.json()["error"], re.IGNORECASE), response.json()


@pytest.mark.parametrize(("body", "status", "pattern"), [
    (b'{"pixels": [[NaN]]}', 400, r"28x28"),
    (b'{"pixels": ' + json.dumps([[0] * 27 + [1e308]] * 28).encode() + b"}", 400, r"from 0 .* to 255"),
    (b'{"pixels": ' + json.dumps([[0] * 27 + [-1]] * 28).encode().replace(b"-1", b"-Infinity") + b"}", 400,
     r"finite"),
    (b'{"strokes": [[[0, 0], [Infinity, 1]]]}', 400, r"NaN or infinite"),
    (b'{"strokes": [[[0, 0], [1e308, 1e308]]]}', 400, r"coordinate beyond \+-1e\+09"),
    (b'{"strokes": [[[-1e300, 0], [1e300, 1]]]}', 400, r"coordinate beyond"),
    (b'{"strokes": [[[0, 0], [1' + b"0" * 5000 + b', 1]]]}', 400, r"error parsing the body"),
    (b'{"strokes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, r"error parsing the body"),
    (b"[" * 1_000_000 + b"]" * 1_000_000, 400, r"error parsing the body"),
    ({"strokes": [[[True, False], [1, 1]]]}, 422, r"strokes.0.0.0: Input should be a valid number"),
    ({"strokes": [[["1", "2"], [1, 1]]]}, 422, r"valid number"),
    ({"pixels": [[True] * 28] * 28}, 422, r"valid number"),
    ({"strokes": 5}, 422, r"strokes"),
    ({"model": 5, "strokes": TRIANGLE}, 422, r"model: Input should be a valid string"),
    ({"model": "../../etc/passwd", "strokes": TRIANGLE}, 422, r"Unknown model"),
    ({"strokes": [[[0, 0]]]}, 422, r"draw something"),
    ({"strokes": [[], [], []]}, 422, r"draw something"),
    ({"strokes": [[[5, 5], [5, 5]]]}, 200, r""),  # two points on one spot: a dot, drawn as such
    ({"strokes": [[[0, 0]]] * 10_001}, 400, r"more than 10000 points or strokes"),
    ({"strokes": [[]] * 200_000}, 400, r"more than 10000 points or strokes"),
    ({"pixels": [[1] * 28] * 27 + [[1] * 5]}, 400, r"28x28 array of numbers"),
    ({"pixels": [[1] * 28]}, 400, r"Received shape \(1, 28\)"),
    ({"image": "data:image/png;base64," + "A" * 100}, 400, r"not a readable image"),
    ({"image": "data:;base64,"}, 400, r"not a readable image"),
    ({"image": "data:image/png;base64"}, 400, r"must be a data URL"),
    ({"image": "data:image/png;base64,%%%"}, 400, r"invalid base64"),
    ({"image": "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()}, 400, r"not a readable image"),
    ({"image": 5}, 422, r"image: Input should be a valid string"),
], ids=lambda value: None)
def test_hostile_bodies(client, body, status, pattern):
    response = post(client, body)
    if status == 200:
        assert response.status_code == 200 and all(score["probability"] is not None
                                                    for score in response.json()["scores"])
        return
    json_error(response, status, pattern)


@pytest.mark.parametrize(("content_type", "body"), [("text/plain", b'{"strokes": []}'),
                                                     ("application/x-www-form-urlencoded", b"strokes=1"),
                                                     ("multipart/form-data; boundary=x", b"--x--"),
                                                     ("application/json", b"\xff\xfe{}")])
def test_wrong_content_types(client, content_type, body):
    json_error(post(client, body, content_type), 422, r"Invalid request")


def test_routes_do_not_reach_the_file_system(client):
    for path in ("/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/api/models/..%2F..%2Fetc/model.json",
                 "/api/models/%00/model.bin"):
        assert client.get(path).status_code == 404, path


def test_a_body_that_never_finishes_is_timed_out(model_files):
    app = create_app(model_files, budget=Budget(request_timeout_seconds=0.3))
    sent = []

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b'{"strokes": [[[0, 0]', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"",
             "headers": [(b"content-type", b"application/json")], "http_version": "1.1", "scheme": "http",
             "server": ("testserver", 80), "client": ("127.0.0.1", 1), "root_path": "", "app": app}

    async def run():
        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(run())
    start = next(message for message in sent if isinstance(message, dict) and message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if isinstance(message, dict)
                    and message["type"] == "http.response.body")
    assert start["status"] == 408 and "did not arrive within 0.3 seconds" in json.loads(body)["error"]


def test_concurrent_predictions_agree(client):
    drawing = {"strokes": TRIANGLE}
    expected = post(client, drawing).json()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(client, drawing).json(), range(32)))
    assert all(answer == expected for answer in answers)


def test_a_model_whose_arithmetic_overflows_answers_422_not_null_scores(tmp_path, test_client_class):
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1e38, input_shape=(28, 28)))  # finite, but 255 * 1e38 is not a float32
    model.add(layers.Flatten())
    model.add(layers.Dense(len(DOODLE_LABELS), activation="softmax"))
    path = model.save(tmp_path / "huge.npz", labels=DOODLE_LABELS)
    with test_client_class(create_app({"huge": path, "fine": save_untrained(tmp_path / "fine.npz", DOODLE_LABELS)})) \
            as client:
        json_error(post(client, {"model": "huge", "strokes": TRIANGLE}), 422, r"cannot score this drawing")
        assert np.isfinite([s["probability"] for s in post(client, {"model": "fine", "strokes": TRIANGLE})
                            .json()["scores"]]).all()
