"""The playground's JSON API: sessions of every dataset, activation and optimizer, what a step answers, the
errors (4xx JSON naming the field), the session limit, and the read-only source pages the math panel links to."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from NeuralNetworks import page
from NeuralNetworks.app import playground, playground_run
from NeuralNetworks.app.sessions import SessionStore

DEFAULTS = {"hidden": [4, 4], "activation": "tanh", "optimizer": "adam", "learning_rate": 0.03, "batch_size": 10,
            "noise": 0.0, "train_fraction": 0.5, "seed": 0}


def create(client, **settings) -> dict:
    response = client.post("/api/playground", json=settings)
    assert response.status_code == 200, response.text
    return response.json()


def step(client, session: str, steps: int) -> dict:
    response = client.post(f"/api/playground/{session}/step", json={"steps": steps})
    assert response.status_code == 200, response.text
    return response.json()


def check_view(view: dict, hidden: list[int], classification: bool) -> None:
    sizes = [2, *hidden, 1]
    grid = view["grid"]
    assert len(grid) >= 32 and all(len(row) == len(grid) for row in grid)
    assert [len(layer) for layer in view["neurons"]] == sizes[1:]
    side = len(view["neurons"][0][0])
    assert 4 <= side < len(grid) and all(len(row) == side for layer in view["neurons"] for unit in layer
                                         for row in unit)
    assert [(len(kernel), len(kernel[0])) for kernel in view["weights"]] == list(zip(sizes[:-1], sizes[1:], strict=True))
    assert len(view["gradient_norms"]) == len(sizes) - 1
    assert all(norm is not None and norm >= 0 for norm in view["gradient_norms"])
    assert math.isfinite(view["loss"]) and math.isfinite(view["test_loss"])
    if classification:
        assert all(0 <= p <= 1 for row in grid for p in row)
        assert 0 <= view["accuracy"] <= 1 and 0 <= view["test_accuracy"] <= 1
    else:
        assert view["accuracy"] is None and view["test_accuracy"] is None


@pytest.mark.parametrize("dataset", ["xor", "circles", "spirals", "blobs", "regression"])
def test_every_dataset_trains_with_the_defaults(client, dataset):
    created = create(client, dataset=dataset)
    assert created["settings"] == {"dataset": dataset, **DEFAULTS}
    classification = dataset != "regression"
    assert created["task"] == ("classification" if classification else "regression")
    assert len(created["train"]["x"]) == len(created["train"]["y"]) == 250 == len(created["test"]["x"])
    start = step(client, created["session"], 0)
    assert start["step"] == 0
    check_view(start, [4, 4], classification)
    trained = step(client, created["session"], 300)
    assert trained["step"] == 300
    check_view(trained, [4, 4], classification)
    assert trained["loss"] < start["loss"]
    assert trained["weights"] != start["weights"] and trained["grid"] != start["grid"]


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_every_activation_trains(client, activation):
    created = create(client, dataset="circles", activation=activation, hidden=[6, 3])
    start = step(client, created["session"], 0)
    trained = step(client, created["session"], 200)
    check_view(trained, [6, 3], classification=True)
    assert trained["loss"] < start["loss"]
    if activation == "relu":
        assert min(v for layer in trained["neurons"][:-1] for unit in layer for row in unit for v in row) >= 0
    if activation == "sigmoid":
        assert all(0 <= v <= 1 for unit in trained["neurons"][0] for row in unit for v in row)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_every_optimizer_trains(client, optimizer):
    created = create(client, dataset="blobs", optimizer=optimizer, learning_rate=0.1)
    start = step(client, created["session"], 0)
    assert step(client, created["session"], 100)["loss"] < start["loss"]


@pytest.mark.parametrize("hidden", [[], [1], [16] * 6])
def test_from_no_hidden_layer_to_six_of_sixteen(client, hidden):
    created = create(client, dataset="xor", hidden=hidden)
    check_view(step(client, created["session"], 20), hidden, classification=True)


def test_same_settings_give_the_same_numbers_and_sessions_are_separate(client):
    first = create(client, dataset="spirals", seed=7)["session"]
    second = create(client, dataset="spirals", seed=7)["session"]
    other = create(client, dataset="spirals", seed=8)["session"]
    assert first != second
    step(client, first, 30)
    a = step(client, first, 20)  # 30 + 20 steps in two requests
    b = step(client, second, 50)
    assert a["step"] == b["step"] == 50 and a["loss"] == b["loss"] and a["weights"] == b["weights"]
    assert step(client, other, 50)["loss"] != a["loss"]
    again = step(client, first, 0)
    assert again["step"] == 50 and again["loss"] == a["loss"]  # 0 steps only reports


@pytest.mark.parametrize(("body", "field"), [
    ({}, "dataset"),
    ({"dataset": "moons"}, "dataset"),
    ({"dataset": "XOR"}, "dataset"),
    ({"dataset": 3}, "dataset"),
    ({"dataset": "xor", "hidden": [4] * 7}, "hidden"),
    ({"dataset": "xor", "hidden": [17]}, "hidden.0"),
    ({"dataset": "xor", "hidden": [4, 0]}, "hidden.1"),
    ({"dataset": "xor", "hidden": [4.0]}, "hidden.0"),
    ({"dataset": "xor", "hidden": "4,4"}, "hidden"),
    ({"dataset": "xor", "activation": "softmax"}, "activation"),
    ({"dataset": "xor", "optimizer": "rmsprop"}, "optimizer"),
    ({"dataset": "xor", "learning_rate": 0}, "learning_rate"),
    ({"dataset": "xor", "learning_rate": 11}, "learning_rate"),
    ({"dataset": "xor", "learning_rate": "0.1"}, "learning_rate"),
    ({"dataset": "xor", "batch_size": 0}, "batch_size"),
    ({"dataset": "xor", "batch_size": 101}, "batch_size"),
    ({"dataset": "xor", "batch_size": True}, "batch_size"),
    ({"dataset": "xor", "noise": -0.1}, "noise"),
    ({"dataset": "xor", "noise": 0.6}, "noise"),
    ({"dataset": "xor", "train_fraction": 0.95}, "train_fraction"),
    ({"dataset": "xor", "train_fraction": 0.05}, "train_fraction"),
    ({"dataset": "xor", "seed": -1}, "seed"),
    ({"dataset": "xor", "seed": 2**32}, "seed"),
    ({"dataset": "xor", "seed": 1.5}, "seed"),
    ({"dataset": "xor", "steps": 10}, "steps"),
])
def test_a_wrong_setting_is_a_422_naming_the_field(client, body, field):
    response = client.post("/api/playground", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error.startswith("Invalid request: ") and f"{field}:" in error


def test_the_body_must_be_a_json_object(client):
    for content in (b"not json", b"[]", b"null", b'"xor"'):
        response = client.post("/api/playground", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422 and "error" in response.json()


@pytest.mark.parametrize("body", [{"steps": -1}, {"steps": playground.MAX_STEPS_PER_REQUEST + 1}, {"steps": 1.0},
                                  {"steps": "5"}, {"steps": 1, "extra": 2}])
def test_a_wrong_step_request_is_a_422_naming_steps(client, body):
    session = create(client, dataset="xor")["session"]
    response = client.post(f"/api/playground/{session}/step", json=body)
    assert response.status_code == 422
    assert ("steps:" in response.json()["error"]) or ("extra:" in response.json()["error"])
    assert step(client, session, 0)["step"] == 0


@pytest.mark.parametrize("session", ["unknown", "x" * 5000, "%2e%2e", "a b"])
def test_an_unknown_session_is_a_404_everywhere(client, session):
    for method, url, body in (("POST", f"/api/playground/{session}/step", {"steps": 1}),
                              ("GET", f"/api/playground/{session}/code", None),
                              ("DELETE", f"/api/playground/{session}", None)):
        response = client.request(method, url, json=body)
        assert response.status_code == 404, (method, response.text)
        assert "Unknown playground session" in response.json()["error"]


def test_a_deleted_session_is_gone(client):
    session = create(client, dataset="xor")["session"]
    assert client.delete(f"/api/playground/{session}").status_code == 204
    assert client.post(f"/api/playground/{session}/step", json={"steps": 1}).status_code == 404


def test_a_full_store_refuses_new_sessions_with_a_503(client):
    saved = client.app.state.playground
    client.app.state.playground = SessionStore("playground", max_sessions=2, idle_seconds=60)
    try:
        kept = [create(client, dataset="xor")["session"] for _ in range(2)]
        response = client.post("/api/playground", json={"dataset": "xor"})
        assert response.status_code == 503
        assert "limit of 2 playground sessions" in response.json()["error"]
        assert step(client, kept[0], 1)["step"] == 1  # the sessions already there still work
        client.delete(f"/api/playground/{kept[1]}")
        create(client, dataset="xor")
    finally:
        client.app.state.playground = saved


def test_diverging_training_is_a_422_naming_the_learning_rate(client):
    session = create(client, dataset="regression", activation="relu", optimizer="sgd", learning_rate=10,
                     hidden=[16, 16, 16])["session"]
    response = client.post(f"/api/playground/{session}/step", json={"steps": 200})
    assert response.status_code == 422
    assert "`learning_rate`" in response.json()["error"]
    response = client.get(f"/api/playground/{session}/code")  # the steps before the failure still reproduce
    assert response.status_code == 200 and "final loss" in response.text


def test_the_code_is_python_text(client):
    session = create(client, dataset="circles", optimizer="momentum")["session"]
    step(client, session, 12)
    response = client.get(f"/api/playground/{session}/code")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-python")
    text = response.text
    compile(text, "playground.py", "exec")
    assert "STEPS = 12" in text and "momentum=0.9" in text and 'toy.make("circles"' in text
    assert text.rstrip().splitlines()[-1].startswith('print(f"final loss: ')


def test_the_page_is_served_with_the_apps_security_headers(client):
    response = client.get("/playground")
    assert response.status_code == 200
    assert 'id="play"' in response.text and 'src="static/playground.js"' in response.text
    assert "script-src" not in response.text and "<script>" not in response.text and "style=" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert 'id="playground-link"' in client.get("/").text


def test_the_source_pages_show_the_named_files_with_anchors(client):
    page = client.get("/playground/source/nn/layers/core.py")
    assert page.status_code == 200
    assert 'id="Dense.backward_preactivation"' in page.text and 'id="L1"' in page.text
    assert page.text.count('id="preactivation"') == 1  # the bare name, once: at its first definition
    assert page.text.index('id="preactivation"') < page.text.index('id="Activation.preactivation"')
    assert "&lt;" in client.get("/playground/source/nn/models.py").text  # escaped, never raw markup
    docs = client.get("/playground/docs/backpropagation.md")
    assert docs.status_code == 200 and 'id="dense"' in docs.text and 'id="losses"' in docs.text
    for url in ("/playground/source/nn/saving.py", "/playground/source/../pyproject.toml",
                "/playground/docs/../README.md", "/playground/secrets/x", "/playground/source/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "error" in response.json()


def test_every_function_the_playground_links_to_has_its_anchor(client):
    """The equations panel links each line to a function of the library (playground-math.js): each anchor is
    on the served source page, so a renamed method cannot leave a link that lands nowhere."""
    script = (Path(page.__file__).parent / "static" / "playground-math.js").read_text(encoding="utf-8")
    links = set(re.findall(r"'(nn/[\w/]+\.py)',\s*'([\w.]+)'", script))
    assert ("nn/layers/core.py", "Dense.backward_preactivation") in links
    for source, name in sorted(links):
        assert f'id="{name}"' in client.get(f"/playground/source/{source}").text, (source, name)


def test_the_openapi_schema_lists_the_playground_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/playground", "/api/playground/{session}/step", "/api/playground/{session}/code"} <= set(paths)


def test_bounds_match_the_issue():
    assert playground_run.MAX_HIDDEN_LAYERS == 6 and playground_run.MAX_UNITS == 16
    assert playground_run.GRID_SIDE >= 32
