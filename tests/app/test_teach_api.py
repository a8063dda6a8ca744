"""Teach through its HTTP API: sessions kept apart, every limit refused with a 4xx naming it, classes deleted and
models retrained, and the downloaded model predicting exactly as the session did.

The base is the test fixtures' small "doodles" model (Rescaling, Flatten, Dense, Dense): its features are the
pixels, so training takes a fraction of a second; test_teach_transfer.py covers the shipped convolutional base.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
import time
import zipfile

import numpy as np
import pytest

from NeuralNetworks import serving
from NeuralNetworks.app import create_app, teach, teaching, transfer
from NeuralNetworks.cli import main as cli_main
from NeuralNetworks.nn import models

PACE_SECONDS = 2 * teach.EVENT_POLL_SECONDS


def ring(radius: float = 30, center=(50, 50), points: int = 24) -> list[list[list[float]]]:
    return [[[center[0] + radius * math.cos(2 * math.pi * i / points),
              center[1] + radius * math.sin(2 * math.pi * i / points)] for i in range(points + 1)]]


def bar(tilt: float = 0.0) -> list[list[list[float]]]:
    return [[[50.0 + tilt, 10.0], [50.0 - tilt, 90.0]]]


def cross(size: float = 40.0) -> list[list[list[float]]]:
    return [[[50 - size, 50 - size], [50 + size, 50 + size]], [[50 + size, 50 - size], [50 - size, 50 + size]]]


SHAPES = {"ring": lambda k: ring(20 + 4 * k), "bar": lambda k: bar(3 * k - 6), "cross": lambda k: cross(20 + 4 * k)}


def assert_refused(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert re.search(pattern, response.json()["error"]), response.json()


def new_session(client, **body) -> str:
    response = client.post("/api/teach", json=body or None)
    assert response.status_code == 200, response.text
    return response.json()["session"]


def add(client, session: str, label: str, **drawing):
    return client.post(f"/api/teach/{session}/examples", json={"label": label, **drawing})


def teach_shapes(client, session: str, shapes=("ring", "bar"), count: int = 4) -> None:
    for shape in shapes:
        for k in range(count):
            assert add(client, session, shape, strokes=SHAPES[shape](k)).status_code == 200


@pytest.fixture
def client(model_files, test_client_class):
    """A fresh app per test: its Teach sessions (at most MAX_TEACH_SESSIONS) are the test's own."""
    with test_client_class(create_app(model_files)) as client:
        yield client


@pytest.fixture
def trained(client) -> str:
    session = new_session(client)
    teach_shapes(client, session)
    assert client.post(f"/api/teach/{session}/train").status_code == 200
    return session


# -- sessions -----------------------------------------------------------------------------------------------
def test_a_session_id_is_random_and_a_session_sees_only_its_own_examples(client):
    first, second = new_session(client), new_session(client, base="doodles")
    assert first != second and len(first) >= 32
    teach_shapes(client, first)
    mine, theirs = client.get(f"/api/teach/{first}").json(), client.get(f"/api/teach/{second}").json()
    assert [entry["label"] for entry in mine["classes"]] == ["ring", "bar"]
    assert [entry["count"] for entry in mine["classes"]] == [4, 4]
    assert theirs["classes"] == [] and theirs["trained"] is None
    assert client.post(f"/api/teach/{first}/train").status_code == 200
    assert_refused(client.post(f"/api/teach/{second}/predict", json={"strokes": ring()}), 409, "train")
    assert_refused(client.get(f"/api/teach/{second}/model"), 409, "train")
    example = mine["classes"][0]["examples"][0]["id"]
    assert_refused(client.delete(f"/api/teach/{second}/examples/{example}"), 404, "no example")
    assert client.get(f"/api/teach/{first}").json()["classes"][0]["count"] == 4  # untouched by the other session
    for path in ("", "/model", "/export"):
        assert_refused(client.get(f"/api/teach/{first[:-2]}xy{path}"), 404, "Unknown teach session")


def test_an_ended_session_is_gone(client):
    session = new_session(client)
    assert client.delete(f"/api/teach/{session}").status_code == 204
    assert_refused(client.get(f"/api/teach/{session}"), 404, "Unknown teach session")
    assert_refused(add(client, session, "ring", strokes=ring()), 404, "Unknown teach session")


def test_the_base_must_be_a_served_model_with_a_feature_layer(client):
    assert_refused(client.post("/api/teach", json={"base": "nope"}), 422, "Unknown base model 'nope'.*doodles")
    session = new_session(client, base="digits")
    assert client.get(f"/api/teach/{session}").json()["base"] == "digits"


def test_examples_are_preprocessed_exactly_as_for_predict(client):
    session = new_session(client)
    taught = add(client, session, "ring", strokes=ring()).json()
    predicted = client.post("/api/predict", json={"model": "doodles", "strokes": ring()}).json()
    assert taught["preview"] == predicted["preview"]
    assert taught["thumbnail"].startswith("data:image/png;base64,")
    assert_refused(add(client, session, "ring", strokes=[]), 422, "no ink|draw something")
    assert_refused(add(client, session, "ring", strokes=ring(), pixels=[[0] * 28] * 28), 422, "exactly one")
    assert_refused(add(client, session, "ring", image="data:image/png;base64,AAAA"), 400, "not a readable image")


# -- limits -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["", "   ", "x" * (teaching.MAX_LABEL_CHARS + 1), "tab\there", "new\nline"])
def test_a_class_name_is_short_printable_text(client, label):
    assert_refused(add(client, new_session(client), label, strokes=ring()), 422, "MAX_LABEL_CHARS")


def test_class_names_are_kept_as_text(client):
    session = new_session(client)
    name = '<img src=x onerror="alert(1)"> & café'
    assert add(client, session, f"  {name} ", strokes=ring()).status_code == 200
    assert client.get(f"/api/teach/{session}").json()["classes"][0]["label"] == name  # ends trimmed, else as sent


def test_classes_examples_and_example_sizes_are_limited(client, monkeypatch):
    monkeypatch.setattr(teaching, "MAX_CLASSES", 2)
    monkeypatch.setattr(teaching, "MAX_EXAMPLES_PER_CLASS", 3)
    session = new_session(client)
    teach_shapes(client, session, count=3)
    assert_refused(add(client, session, "cross", strokes=cross()), 409, "2 classes \\(MAX_CLASSES\\)")
    assert_refused(add(client, session, "ring", strokes=ring()), 409, "3 examples \\(MAX_EXAMPLES_PER_CLASS\\)")
    many = [[[float(i % 90), float(i // 90)] for i in range(teaching.MAX_EXAMPLE_POINTS + 1)]]
    assert_refused(add(client, session, "bar", strokes=many), 413, "MAX_EXAMPLE_POINTS")
    huge = "data:image/png;base64," + "A" * teaching.MAX_EXAMPLE_IMAGE_BYTES
    assert_refused(add(client, session, "bar", image=huge), 413, "MAX_EXAMPLE_IMAGE_BYTES")
    limits = client.get(f"/api/teach/{session}").json()["limits"]
    assert limits["MAX_LABEL_CHARS"] == teaching.MAX_LABEL_CHARS and "MAX_TRAINING_SECONDS" in limits


def test_training_needs_two_classes_of_enough_examples(client):
    session = new_session(client)
    teach_shapes(client, session, shapes=("ring",), count=3)
    assert_refused(client.post(f"/api/teach/{session}/train"), 422, "MIN_CLASSES")
    assert add(client, session, "bar", strokes=bar()).status_code == 200
    assert_refused(client.post(f"/api/teach/{session}/train"), 422, "MIN_EXAMPLES_PER_CLASS.*bar")


def test_sessions_are_limited_server_wide(model_files, test_client_class, monkeypatch):
    monkeypatch.setattr(teaching, "MAX_TEACH_SESSIONS", 2)
    with test_client_class(create_app(model_files)) as client:
        new_session(client), new_session(client)
        assert_refused(client.post("/api/teach"), 429, "2 Teach sessions \\(MAX_TEACH_SESSIONS\\)")


def test_trainings_at_once_are_limited_server_wide(client, monkeypatch):
    monkeypatch.setattr(teaching, "TRAINING_QUEUE_SECONDS", 0.2)
    session = new_session(client)
    teach_shapes(client, session)
    slots = client.app.state.teach.training_slots
    for _ in range(teaching.MAX_CONCURRENT_TRAININGS):  # every slot taken, as by other users' trainings
        slots.acquire()
    try:
        assert_refused(client.post(f"/api/teach/{session}/train"), 429, "MAX_CONCURRENT_TRAININGS")
    finally:
        for _ in range(teaching.MAX_CONCURRENT_TRAININGS):
            slots.release()
    assert client.post(f"/api/teach/{session}/train").status_code == 200  # the refusal left nothing behind


def test_a_training_stops_at_its_time_limit_with_the_model_so_far(client, monkeypatch):
    monkeypatch.setattr(teaching, "MAX_TRAINING_SECONDS", 0.0)
    session = new_session(client)
    teach_shapes(client, session)
    result = client.post(f"/api/teach/{session}/train").json()
    assert result["stopped_early"] is True and result["epochs"] == 1
    assert client.post(f"/api/teach/{session}/predict", json={"strokes": ring()}).status_code == 200


# -- training, deleting, retraining -------------------------------------------------------------------------
def test_the_session_learns_its_classes_and_predicts_like_the_app(client, trained):
    response = client.post(f"/api/teach/{trained}/predict", json={"strokes": ring(26)})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"model", "style", "label", "scores", "preview"}
    assert answer["label"] == "ring" and answer["model"] == "teach" and answer["style"] == "quickdraw"
    assert [score["label"] for score in answer["scores"]] == ["ring", "bar"]
    assert math.isclose(sum(score["probability"] for score in answer["scores"]), 1, rel_tol=1e-5)
    assert client.post(f"/api/teach/{trained}/predict", json={"strokes": bar(2)}).json()["label"] == "bar"
    state = client.get(f"/api/teach/{trained}").json()["trained"]
    assert state["labels"] == ["ring", "bar"] and state["accuracy"] == 1.0 and not state["stale"]


def test_a_deleted_class_leaves_the_model_and_the_next_training(client, trained):
    teach_shapes(client, trained, shapes=("cross",))
    assert client.post(f"/api/teach/{trained}/train").json()["labels"] == ["ring", "bar", "cross"]
    state = client.delete(f"/api/teach/{trained}/classes/bar").json()
    assert [entry["label"] for entry in state["classes"]] == ["ring", "cross"]
    assert state["trained"] is None  # its labels were not the classes any more
    assert_refused(client.post(f"/api/teach/{trained}/predict", json={"strokes": bar()}), 409, "train")
    assert_refused(client.delete(f"/api/teach/{trained}/classes/bar"), 404, "no class 'bar'")
    assert client.post(f"/api/teach/{trained}/train").json()["labels"] == ["ring", "cross"]
    scores = client.post(f"/api/teach/{trained}/predict", json={"strokes": bar()}).json()["scores"]
    assert {score["label"] for score in scores} == {"ring", "cross"}


def test_a_class_name_with_a_slash_can_be_deleted(client):
    session = new_session(client)
    assert add(client, session, "a/b ?#", strokes=ring()).status_code == 200
    assert client.delete(f"/api/teach/{session}/classes/a%2Fb%20%3F%23").json()["classes"] == []


def test_retraining_uses_the_examples_added_and_removed_since(client, trained):
    state = client.get(f"/api/teach/{trained}").json()
    removed = state["classes"][0]["examples"][0]["id"]
    after_delete = client.delete(f"/api/teach/{trained}/examples/{removed}").json()
    assert after_delete["classes"][0]["count"] == 3 and after_delete["trained"]["stale"]
    assert client.post(f"/api/teach/{trained}/predict", json={"strokes": ring()}).status_code == 200  # still there
    assert add(client, trained, "bar", strokes=bar(5)).json()["count"] == 5
    assert client.post(f"/api/teach/{trained}/train").status_code == 200
    again = client.get(f"/api/teach/{trained}").json()["trained"]
    assert again["examples"] == 8 and not again["stale"]


def test_a_training_in_progress_blocks_no_prediction_and_not_its_own_session(client, trained, monkeypatch):
    release, entered = threading.Event(), threading.Event()
    original = transfer.FeatureBase.train_head

    def slow_train_head(self, *args, **kwargs):
        entered.set()
        assert release.wait(timeout=30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transfer.FeatureBase, "train_head", slow_train_head)
    session = new_session(client)
    teach_shapes(client, session, shapes=("ring", "cross"))
    answers = {}
    worker = threading.Thread(target=lambda: answers.update(train=client.post(f"/api/teach/{session}/train")))
    worker.start()
    try:
        assert entered.wait(timeout=30)
        assert client.post("/api/predict", json={"strokes": ring()}).status_code == 200  # other users
        assert client.post(f"/api/teach/{trained}/predict", json={"strokes": ring()}).json()["label"] == "ring"
        assert client.get(f"/api/teach/{session}").json()["training"] is True
        assert_refused(client.post(f"/api/teach/{session}/predict", json={"strokes": ring()}), 409, "train")
        assert add(client, session, "cross", strokes=cross(30)).status_code == 200  # the session still answers
        assert_refused(client.post(f"/api/teach/{session}/train"), 409, "already training")
    finally:
        release.set()
        worker.join(timeout=30)
    assert answers["train"].status_code == 200 and answers["train"].json()["labels"] == ["ring", "cross"]
    state = client.get(f"/api/teach/{session}").json()
    assert state["training"] is False and state["trained"]["stale"]  # the example added meanwhile was not in it


def test_training_progress_is_streamed_as_server_sent_events(client, monkeypatch):
    monkeypatch.setattr(teach, "MAX_EVENT_STREAM_SECONDS", 20.0)
    session = new_session(client)
    teach_shapes(client, session)
    received, opened = {}, threading.Event()
    snapshot = teaching.Progress.snapshot

    def watched_snapshot(progress):  # only the events stream reads snapshots
        opened.set()
        return snapshot(progress)

    monkeypatch.setattr(teaching.Progress, "snapshot", watched_snapshot)
    train_head = transfer.FeatureBase.train_head

    def paced_train_head(self, *args, report, **kwargs):  # epochs slower than the stream's polling
        return train_head(self, *args, report=lambda values: (report(values), time.sleep(PACE_SECONDS)), **kwargs)

    monkeypatch.setattr(transfer.FeatureBase, "train_head", paced_train_head)
    reader = threading.Thread(target=lambda: received.update(
        response=client.get(f"/api/teach/{session}/events")))
    reader.start()
    assert opened.wait(timeout=30)  # the stream has looked at the progress before the training starts
    result = client.post(f"/api/teach/{session}/train").json()
    reader.join(timeout=30)
    response = received["response"]
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]
    phases = [event["phase"] for event in events]
    assert phases[0] == "idle" and phases[-1] == "done" and "training" in phases
    epochs = [event["epoch"] for event in events if event["phase"] == "training"]  # sampled: the latest each time
    assert epochs == sorted(epochs) and epochs[-1] <= result["epochs"] == events[-1]["epoch"]
    assert events[-1]["accuracy"] == result["accuracy"] and events[-1]["seconds"] == result["seconds"]


# -- taking the model home ----------------------------------------------------------------------------------
def test_the_downloaded_model_predicts_like_the_session(client, trained, tmp_path, capsys, model_files,
                                                        test_client_class):
    response = client.get(f"/api/teach/{trained}/model")
    assert response.status_code == 200 and "teach.npz" in response.headers["content-disposition"]
    path = tmp_path / "mine.npz"
    path.write_bytes(response.content)
    model = models.load(path)
    assert model.labels == {0: "ring", 1: "bar"} and model.preprocessing == "quickdraw"
    served = serving.load_model(path)
    for strokes in (ring(25), bar(1), cross()):
        session_answer = client.post(f"/api/teach/{trained}/predict", json={"strokes": strokes}).json()
        bitmap = served.preprocess(strokes=strokes)
        assert bitmap.tolist() == session_answer["preview"]
        assert [(label, pytest.approx(p, abs=1e-6)) for label, p in served.top_k(bitmap)] == \
            [(score["label"], score["probability"]) for score in session_answer["scores"]]
    from PIL import Image

    image = tmp_path / "ring.png"
    Image.fromarray(np.array(session_answer["preview"], dtype=np.uint8)).save(image)
    assert cli_main(["predict", "--model", str(path), str(image)]) == 0
    assert "ring.png: " in capsys.readouterr().out
    with test_client_class(create_app({**model_files, "mine": path})) as other:
        assert other.post("/api/predict", json={"model": "mine", "strokes": ring(25)}).json()["label"] == "ring"


def test_the_web_export_is_a_zipped_page_of_the_model(client, trained):
    response = client.get(f"/api/teach/{trained}/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"teach/index.html", "teach/model.json", "teach/model.bin", "teach/model.js",
                "teach/static/app.js"} <= names
        manifest = json.loads(archive.read("teach/model.json"))
    assert manifest["labels"] == ["ring", "bar"] and manifest["preprocessing"] == "quickdraw"
    assert all(name.startswith("teach/") and ".." not in name for name in names)


def test_class_names_stay_data_in_the_exported_files(client):
    session = new_session(client)
    names = ['</script><b>"ring"</b>', "bar ✓ 'ok' \\"]
    for k in range(3):
        assert add(client, session, names[0], strokes=ring(20 + 5 * k)).status_code == 200
        assert add(client, session, names[1], strokes=bar(2 * k)).status_code == 200
    assert client.post(f"/api/teach/{session}/train").status_code == 200
    with zipfile.ZipFile(io.BytesIO(client.get(f"/api/teach/{session}/export").content)) as archive:
        assert json.loads(archive.read("teach/model.json"))["labels"] == names
        script = archive.read("teach/model.js").decode("utf-8")
        index = archive.read("teach/index.html").decode("utf-8")
    registered = script[script.index("window.nn.register(") + len("window.nn.register("):script.rindex(',\n  "')]
    assert json.loads(registered)["labels"] == names  # a JSON string in a script file, not markup
    assert "<b>" not in index  # the page gets the labels from model.js at run time, as text
