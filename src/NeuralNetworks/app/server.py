"""The doodle web app: a JSON API, the classic form post and the drawing page, served by FastAPI + uvicorn.

``create_app`` builds the app (models loaded at start-up, so a bad file fails now, not at the first request);
``run`` serves it on 127.0.0.1:5000 by default, never in debug or reload mode.
"""

from __future__ import annotations

import html
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..budget import DEFAULT_BUDGET, Budget
from ..page import CONTENT_SECURITY_POLICY, HEADER_ONLY_POLICY, RESULT_MARKER, STATIC_DIR
from ..serving import ServedModel
from . import drawings, playground, registry, teach
from .drawings import ErrorMessage, InputProblem, Prediction, PredictRequest
from .inputs import png_data_url
from .limits import BodySizeLimit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
SECURITY_HEADERS = {
    "content-security-policy": f"{CONTENT_SECURITY_POLICY}; {HEADER_ONLY_POLICY}",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

ERRORS = {400: "Unusable input (an image that is not one, coordinates out of range)",
          408: "The body did not arrive in time", 413: "Body too large",
          422: "Empty drawing, unknown model or malformed request"}
ERROR_RESPONSES = {status: {"model": ErrorMessage, "description": text} for status, text in ERRORS.items()}
# The form post answers errors as JSON, or as the page showing the error to a browser that asks for HTML.
FORM_ERROR_RESPONSES = {status: {"description": text, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}},
    "text/html": {"schema": {"type": "string"}}}} for status, text in ERRORS.items()}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(problems)


def _choose(served: Mapping[str, ServedModel], name: str | None) -> ServedModel:
    if name is None:
        return next(iter(served.values()))
    if name not in served:
        raise InputProblem(422, f"Unknown model {name!r}. Expected one of: {', '.join(served)}")
    return served[name]


def _result_html(prediction: Prediction | None, error: str | None) -> str:
    if error is not None:
        return f'<section class="server-result" id="server-result"><p class="error">{html.escape(error)}</p></section>'
    items = "".join(f"<li><span>{html.escape(score.label)}</span> <b>{score.probability:.1%}</b></li>"
                    for score in prediction.scores)
    preview = png_data_url(np.asarray(prediction.preview, dtype=np.uint8))
    return ('<section class="server-result" id="server-result">'
            f'<h2>{html.escape(prediction.model)} says: <em>{html.escape(prediction.label)}</em></h2>'
            f'<ol>{items}</ol><img class="server-preview" src="{preview}" width="112" height="112" '
            'alt="The 28x28 image the model saw"></section>')


def create_app(model_paths: Mapping[str, str | os.PathLike] | None = None, *,
               budget: Budget | None = None) -> FastAPI:
    """The web app serving ``model_paths`` (name -> model file); the shipped doodle and digit models if None.

    ``budget`` (default ``DEFAULT_BUDGET``) bounds the model files it loads and every request: body size and
    the time to receive it, image size, points and coordinates of a drawing."""
    budget = budget or DEFAULT_BUDGET
    served = registry.load_models(model_paths if model_paths is not None else registry.model_paths(), budget)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app = FastAPI(title="NeuralNetworks doodle app", version="1",
                  description="Draw, and watch a NumPy-only neural network guess.")
    app.state.models = served
    app.add_middleware(BodySizeLimit, max_bytes=budget.max_request_bytes, timeout=budget.request_timeout_seconds)
    # Decoding an upload at the size limit takes ~150 MB for a moment: as many at once as there are cores, not as
    # many as the server has threads.
    drawing_slots = threading.BoundedSemaphore(os.cpu_count() or 1)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(error))

    @app.exception_handler(InputProblem)
    async def input_problem(request: Request, error: InputProblem) -> JSONResponse:
        return _error(error.status, error.message)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page.replace(RESULT_MARKER, ""))

    @app.get("/api/models", summary="The models this app serves")
    def list_models() -> list[dict[str, object]]:
        return [model.describe() for model in served.values()]

    @app.post("/api/predict", response_model=Prediction, summary="Classify a drawing", responses=ERROR_RESPONSES)
    def predict(request: PredictRequest) -> Prediction:
        model = _choose(served, request.model)
        with drawing_slots:
            return drawings.predict(model, drawings.bitmap(request, model))

    @app.post("/doodle", response_class=HTMLResponse, summary="The classic form post: field `img`, a PNG data URL",
              responses=FORM_ERROR_RESPONSES)
    def doodle(request: Request, img: Annotated[str | None, Form()] = None,
               model: Annotated[str | None, Form()] = None) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        try:
            if not img:
                raise InputProblem(422, "Missing form field `img`: a PNG data URL of the drawing")
            chosen = _choose(served, model)
            with drawing_slots:
                prediction = drawings.predict(chosen, drawings.bitmap(PredictRequest(image=img), chosen))
        except InputProblem as problem:
            if not wants_html:
                return _error(problem.status, problem.message)
            return HTMLResponse(page.replace(RESULT_MARKER, _result_html(None, problem.message)),
                                status_code=problem.status)
        return HTMLResponse(page.replace(RESULT_MARKER, _result_html(prediction, None)))

    _add_web_model_routes(app, served)
    app.state.playground = playground.sessions()  # per app: the playground's bounded session store
    app.include_router(playground.router)
    app.state.teach = teach.Teacher(served)  # Teach's sessions (app.sessions store) and training slots
    app.include_router(teach.router(app.state.teach))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _add_web_model_routes(app: FastAPI, served: Mapping[str, ServedModel]) -> None:
    """GET /api/models/<name>/model.json and model.bin: each model's weights in the static page's format, so that
    the page predicts while the user draws without a request per stroke (``NeuralNetworks.export.web``)."""
    from ..export import ExportError
    from ..export.web import web_model

    exported: dict[str, tuple[dict, bytes] | str] = {}
    for name, model in served.items():
        try:
            exported[name] = web_model(model.model, name)
        except ExportError as error:
            exported[name] = f"Model {name!r} cannot run in the browser: {error}"

    def lookup(name: str) -> tuple[dict, bytes]:
        found = exported.get(name)
        if found is None or isinstance(found, str):
            raise InputProblem(404, found or f"Unknown model {name!r}. Expected one of: {', '.join(served)}")
        return found

    @app.get("/api/models/{name}/model.json", include_in_schema=False)
    def web_manifest(name: str) -> JSONResponse:
        return JSONResponse(lookup(name)[0])

    @app.get("/api/models/{name}/model.bin", include_in_schema=False)
    def web_weights(name: str) -> Response:
        return Response(lookup(name)[1], media_type="application/octet-stream")


def _check_address(host: str, port: int) -> None:
    """Fail with a clear message, before loading anything, if ``host:port`` cannot be listened on."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"`port` must be an integer from 1 to 65535. Received: port={port!r}")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as error:
        raise ValueError(f"Cannot serve on {host}:{port} ({error.strerror or error}): "
                         "choose another --host or --port") from None


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        model_paths: Mapping[str, str | os.PathLike] | None = None,
        extra_models: Iterable[str | os.PathLike] = (), *, budget: Budget | None = None) -> None:
    """Serve the app until interrupted: ``model_paths`` (default: the shipped models) plus ``extra_models``.

    Slow clients are bounded (``app.connections``): a request's head must arrive within
    ``budget.header_timeout_seconds``, and at most ``budget.max_connections`` connections are open (fewer if the
    descriptor limit leaves less room), the ones waiting longest for their head dropped first."""
    from .connections import connection_cap, serve

    budget = budget or DEFAULT_BUDGET
    _check_address(host, port)
    app = create_app(registry.model_paths(extra_models, base=model_paths), budget=budget)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"NeuralNetworks app: serving {', '.join(app.state.models)} on http://{shown_host}:{port} "
          f"(at most {connection_cap(budget.max_connections)} connections; Ctrl-C to stop)", flush=True)
    serve(app, host, port, budget)
