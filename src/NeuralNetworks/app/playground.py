"""The playground: the page at /playground and its JSON API, training this library's networks step by step.

    POST /api/playground                 Settings -> {"session": ID, "settings", the points to draw}
    POST /api/playground/{ID}/step       {"steps": N} -> losses, accuracies, the output grid, neurons, weights,
                                         gradient norms after N more steps (N from 0 to MAX_STEPS_PER_REQUEST)
    GET  /api/playground/{ID}/code       the Python script that repeats the run (text/x-python)
    DELETE /api/playground/{ID}          forget the session

Sessions live in the app's ``SessionStore`` (``app.state.playground``, made by ``sessions()`` in
``create_app``): private to whoever holds the id, at most ``MAX_SESSIONS``, gone after ``IDLE_SECONDS`` unused.
Routes are plain ``def`` functions, so the training runs in the server's thread pool, never in its event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..page import STATIC_DIR
from . import playground_source
from .playground_run import Run, Settings, TrainingDiverged, script
from .sessions import SessionStore

MAX_SESSIONS = 64  # each holds 500 points and a network of at most 6 x 16 units: at most ~50 KB
IDLE_SECONDS = 30 * 60.0
MAX_STEPS_PER_REQUEST = 500  # ~0.5 s for the largest network and batch on one core
LOCK_WAIT_SECONDS = 2.0  # a request waits this long for its session's previous one (the page sends one at a time)
PAGE_FILE = STATIC_DIR / "playground.html"
UNPROCESSABLE, NOT_FOUND = 422, 404
ERROR_RESPONSES = {status: {"description": text, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}
    for status, text in ((400, "A body that is not JSON"), (404, "Unknown or expired session"),
                         (408, "The body did not arrive in time"), (409, "The session is busy with another request"),
                         (413, "Body too large"), (422, "A field out of range, or training that diverged"),
                         (503, "The server holds its limit of sessions"))}

router = APIRouter()


def sessions() -> SessionStore[Run]:
    """A new, empty store of playground sessions: one per app."""
    return SessionStore("playground", MAX_SESSIONS, IDLE_SECONDS, lock_wait_seconds=LOCK_WAIT_SECONDS)


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    steps: int = Field(1, ge=0, le=MAX_STEPS_PER_REQUEST,
                       description="Training steps (batches) to take before answering; 0 only reports")


class Points(BaseModel):
    x: list[list[float]]
    y: list[float]


class Created(BaseModel):
    session: str
    settings: Settings
    task: str = Field(description='"classification" (targets 0 and 1) or "regression"')
    extent: float = Field(description="The input square is [-extent, extent] on both axes")
    grid_side: int
    neuron_side: int
    train: Points
    test: Points


class View(BaseModel):
    step: int
    loss: float | None
    test_loss: float | None
    accuracy: float | None = Field(description="null for regression")
    test_accuracy: float | None = Field(description="null for regression")
    grid: list[list[float | None]] = Field(description="The output over the input square, rows from the top")
    neurons: list[list[list[list[float | None]]]] = Field(description="Per layer, per unit: its output grid")
    weights: list[list[list[float | None]]] = Field(description="Per layer: the kernel, inputs x units")
    biases: list[list[float | None]]
    gradient_norms: list[float | None] = Field(description="Per layer: the norm of the training loss's gradient")


def _store(request: Request) -> SessionStore[Run]:
    return request.app.state.playground


@router.get("/playground", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(PAGE_FILE.read_text(encoding="utf-8"))


@router.get("/playground/{kind}/{name:path}", response_class=HTMLResponse, include_in_schema=False)
def source(kind: str, name: str) -> HTMLResponse:
    """The library file or docs page a link of the math panel points at."""
    try:
        return HTMLResponse(playground_source.render(kind, name))
    except playground_source.SourceNotShown as error:
        raise HTTPException(NOT_FOUND, str(error)) from None


@router.post("/api/playground", response_model=Created, summary="Start a playground session",
             responses=ERROR_RESPONSES)
def create(settings: Settings, request: Request) -> Created:
    run = Run(settings)
    session = _store(request).create(run)
    return Created(session=session, settings=settings, **run.points())


@router.post("/api/playground/{session}/step", response_model=View, summary="Train, then report",
             responses=ERROR_RESPONSES)
def step(session: str, body: StepRequest, request: Request) -> View:
    with _store(request).lock(session) as run:
        try:
            run.train(body.steps)
            return View(**run.view())
        except TrainingDiverged as error:
            raise HTTPException(UNPROCESSABLE, str(error)) from None


@router.get("/api/playground/{session}/code", summary="The Python script that repeats the run",
            response_class=Response, responses={200: {"content": {"text/x-python": {}}}, **ERROR_RESPONSES})
def code(session: str, request: Request) -> Response:
    with _store(request).lock(session) as run:
        text = script(run)
        name = f"playground_{run.settings.dataset}.py"
    return Response(text, media_type="text/x-python",
                    headers={"content-disposition": f'inline; filename="{name}"'})


@router.delete("/api/playground/{session}", status_code=204, summary="Forget a session", responses=ERROR_RESPONSES)
def delete(session: str, request: Request) -> Response:
    store = _store(request)
    store.get(session)  # 404 for an unknown id, as everywhere else
    store.delete(session)
    return Response(status_code=204)
