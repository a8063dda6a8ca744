"""Teach's routes: ``/teach`` (the page) and ``/api/teach/...`` (the API it uses), on an ``APIRouter``.

    POST   /api/teach                         {"base": "doodles"} (optional)  -> {"session": ID}
    GET    /api/teach/{ID}                    the classes, their examples (thumbnails), the model, the limits
    DELETE /api/teach/{ID}                    end the session
    POST   /api/teach/{ID}/examples           {"label", and one of strokes | image | pixels}: add an example
    DELETE /api/teach/{ID}/examples/{N}       remove example N
    DELETE /api/teach/{ID}/classes/{LABEL}    remove a class and its examples
    POST   /api/teach/{ID}/train              -> {"accuracy", "seconds", ...} when the training has ended
    GET    /api/teach/{ID}/events             server-sent events: the training's progress
    POST   /api/teach/{ID}/predict            as /api/predict, with the session's model
    GET    /api/teach/{ID}/model              the model file (.npz)
    GET    /api/teach/{ID}/export             the static web page of the model, zipped

Drawings become bitmaps, and predictions answers, exactly as for /api/predict (``app.drawings``). The sessions and
the training are ``app.teaching``'s; this module only translates HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ..page import STATIC_DIR
from ..serving import ServedModel
from . import drawings, teaching, transfer
from .drawings import Drawing, ErrorMessage, Prediction
from .teaching import MAX_EXAMPLE_IMAGE_BYTES, MAX_EXAMPLE_POINTS, Teacher, TeachRefusal

PAGE = STATIC_DIR / "teach.html"
EVENT_POLL_SECONDS = 0.1  # how often an events stream looks at its session's progress
EVENT_KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing a quiet stream
MAX_EVENT_STREAMS = 32  # events streams open at once, server-wide
MAX_EVENT_STREAM_SECONDS = teaching.MAX_TRAINING_SECONDS + teaching.TRAINING_QUEUE_SECONDS + 60.0
TERMINAL_PHASES = ("done", "failed")

class TeachCreate(BaseModel):
    base: str = Field(teaching.DEFAULT_BASE, max_length=200, description="The served model whose features to use")


class TeachExample(Drawing):
    label: str = Field(description="The class name: 1 to MAX_LABEL_CHARS printable characters, shown as text")


ERRORS = {400: "Unusable drawing, or a body that is not JSON", 404: "No such session, example or class",
          408: "The body did not arrive in time", 409: "A limit, a busy session or a state conflict",
          413: "An example over its size limit", 422: "Malformed request, empty drawing or too few examples",
          429: "A server-wide limit (sessions, trainings, event streams)"}
RESPONSES = {status: {"model": ErrorMessage, "description": text} for status, text in ERRORS.items()}


class StreamSlots:
    """At most ``limit`` leases at once; a lease not released expires after ``seconds`` (a stream that never ran
    its cleanup cannot keep a slot)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._leases: dict[int, float] = {}
        self._next = 0
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        with self._lock:
            now = time.monotonic()
            self._leases = {lease: end for lease, end in self._leases.items() if end > now}
            if len(self._leases) >= self.limit:
                return None
            self._next += 1
            self._leases[self._next] = now + self.seconds
            return self._next

    def release(self, lease: int) -> None:
        with self._lock:
            self._leases.pop(lease, None)


def refused(refusal: TeachRefusal) -> HTTPException:
    return HTTPException(refusal.status, refusal.message)


def check_example_size(drawing: Drawing) -> None:
    if drawing.image is not None and len(drawing.image) > MAX_EXAMPLE_IMAGE_BYTES:
        raise HTTPException(413, f"An example image may be at most {MAX_EXAMPLE_IMAGE_BYTES // 1024} KB as a data "
                                 f"URL (MAX_EXAMPLE_IMAGE_BYTES). Received {len(drawing.image) // 1024} KB")
    points = sum(len(stroke) for stroke in drawing.strokes or ())
    if points > MAX_EXAMPLE_POINTS:
        raise HTTPException(413, f"An example drawing may have at most {MAX_EXAMPLE_POINTS} points "
                                 f"(MAX_EXAMPLE_POINTS). Received {points}")


def router(teacher: Teacher) -> APIRouter:
    """The Teach routes, serving ``teacher``'s sessions."""
    routes = APIRouter(tags=["teach"], responses=RESPONSES)
    store = teacher.store
    drawing_slots = threading.BoundedSemaphore(os.cpu_count() or 1)  # decoding and preprocessing, as /api/predict
    streams = StreamSlots(MAX_EVENT_STREAMS, MAX_EVENT_STREAM_SECONDS)
    page = PAGE.read_text(encoding="utf-8")

    def attempt(action, *args):
        try:
            return action(*args)
        except TeachRefusal as refusal:
            raise refused(refusal) from None

    def taught(session: str) -> ServedModel:
        """The session's trained model, or the refusal saying it has none yet."""
        with store.lock(session) as state:
            return attempt(state.model).served

    @routes.get("/teach", response_class=HTMLResponse, include_in_schema=False)
    def teach_page() -> HTMLResponse:
        return HTMLResponse(page)

    @routes.post("/api/teach", summary="Start a Teach session")
    def create(request: Annotated[TeachCreate | None, Body()] = None) -> dict[str, str]:
        return {"session": attempt(teacher.create, (request or TeachCreate()).base)}

    @routes.get("/api/teach/{session}", summary="A Teach session's classes, examples and model")
    def describe(session: str) -> dict:
        with store.lock(session) as state:
            return state.describe(session)

    @routes.delete("/api/teach/{session}", status_code=204, summary="End a Teach session")
    def end(session: str) -> Response:
        store.get(session)  # 404 if there is none
        store.delete(session)
        return Response(status_code=204)

    @routes.post("/api/teach/{session}/examples", summary="Add an example to a class (created if new)")
    def add_example(session: str, example: TeachExample) -> dict:
        check_example_size(example)
        label = attempt(teaching.check_label, example.label)
        with store.lock(session) as state:
            with drawing_slots:
                bitmap = drawings.bitmap(example, state.base.served)
            added = attempt(state.add_example, label, bitmap)
            return {"id": added.id, "label": label, "count": len(state.classes[label]),
                    "thumbnail": added.describe()["thumbnail"], "preview": bitmap.tolist()}

    @routes.delete("/api/teach/{session}/examples/{example}", summary="Remove an example")
    def delete_example(session: str, example: int) -> dict:
        with store.lock(session) as state:
            attempt(state.delete_example, example)
            return state.describe(session)

    @routes.delete("/api/teach/{session}/classes/{label:path}", summary="Remove a class and its examples")
    def delete_class(session: str, label: str) -> dict:
        with store.lock(session) as state:
            attempt(state.delete_class, label)
            return state.describe(session)

    @routes.post("/api/teach/{session}/train", summary="Train on the examples; answers when training has ended")
    def train(session: str) -> dict:
        trained = attempt(teacher.train, session)
        return {"accuracy": trained.accuracy, "seconds": trained.seconds, "epochs": trained.epochs,
                "stopped_early": trained.stopped_early, "labels": trained.labels}

    @routes.get("/api/teach/{session}/events", summary="Server-sent events: the progress of the session's training",
                response_class=StreamingResponse)
    def events(session: str) -> StreamingResponse:
        progress = store.get(session).progress
        lease = streams.acquire()
        if lease is None:
            raise HTTPException(429, f"{MAX_EVENT_STREAMS} event streams are already open on this server "
                                     "(MAX_EVENT_STREAMS); try again later")
        return StreamingResponse(_progress_events(progress, streams, lease), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    @routes.post("/api/teach/{session}/predict", response_model=Prediction,
                 summary="Classify a drawing with the session's model, as /api/predict does")
    def predict(session: str, drawing: Drawing) -> Prediction:
        served = taught(session)
        with drawing_slots:
            return drawings.predict(served, drawings.bitmap(drawing, served), "The taught model")

    @routes.get("/api/teach/{session}/model", summary="The session's model file (.npz)",
                response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
    def model_file(session: str) -> Response:
        served = taught(session)
        with served.lock:
            data = transfer.model_file_bytes(served.model)
        return _download(data, f"{transfer.TAUGHT_MODEL_NAME}.npz", "application/octet-stream")

    @routes.get("/api/teach/{session}/export", summary="The static web page of the session's model, zipped",
                response_class=Response, responses={200: {"content": {"application/zip": {}}}})
    def web_export(session: str) -> Response:
        served = taught(session)
        with served.lock:
            data = transfer.web_zip_bytes(served.model)
        return _download(data, f"{transfer.TAUGHT_MODEL_NAME}-web.zip", "application/zip")

    return routes


def _download(data: bytes, file_name: str, media_type: str) -> Response:
    return Response(data, media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{file_name}"'})


async def _progress_events(progress: teaching.Progress, streams: StreamSlots, lease: int):
    """The session's progress as server-sent events (``event: progress``, JSON data) until the training that is
    running, or the next one, has ended; at most MAX_EVENT_STREAM_SECONDS."""
    try:
        _, first_run, first = progress.snapshot()
        saw_training = first["phase"] == "training"
        seen = -1
        started = last_sent = time.monotonic()
        while time.monotonic() - started < MAX_EVENT_STREAM_SECONDS:
            version, run, state = progress.snapshot()
            if version != seen:
                seen, last_sent = version, time.monotonic()
                yield f"event: progress\ndata: {json.dumps(state)}\n\n"
                saw_training = saw_training or state["phase"] == "training"
                if state["phase"] in TERMINAL_PHASES and (saw_training or run > first_run):
                    return
            elif time.monotonic() - last_sent > EVENT_KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keepalive\n\n"
            await asyncio.sleep(EVENT_POLL_SECONDS)
    finally:
        streams.release(lease)
