"""ASGI middleware that caps a request body's size and the time to receive it, before and while it is read."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..budget import DEFAULT_BUDGET

MAX_BODY_BYTES = DEFAULT_BUDGET.max_request_bytes  # a 512x512 canvas PNG is ~50 KB; 2 MB leaves room for uploads
BODY_TIMEOUT_SECONDS = DEFAULT_BUDGET.request_timeout_seconds
PAYLOAD_TOO_LARGE = 413
REQUEST_TIMEOUT = 408


def too_large_message(limit: int) -> str:
    return f"The request body is too large: at most {limit // 1024} KB are accepted"


class BodySizeLimit:
    """Reject bodies over ``max_bytes``: at once from Content-Length, else as soon as the stream passes it; and
    bodies that take longer than ``timeout`` seconds to arrive (a client that sends half a body and waits).

    A streamed (chunked) body that grows too large, or stalls, raises HTTPException(413 or 408) from
    ``receive``; FastAPI re-raises HTTPExceptions met while parsing a body, so the app's handler answers with JSON.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0 or length > self.max_bytes:
                await self._reject(send, too_large_message(self.max_bytes) if length > 0
                                   else "Invalid Content-Length header", PAYLOAD_TOO_LARGE if length > 0 else 400)
                return
        received = 0
        deadline = time.monotonic() + self.timeout
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # the body is in: later calls only wait for a disconnect, which takes as long as it does
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise HTTPException(REQUEST_TIMEOUT, f"The request body did not arrive within {self.timeout:g} "
                                                     "seconds") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(PAYLOAD_TOO_LARGE, too_large_message(self.max_bytes))
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _reject(send: Send, message: str, status: int) -> None:
        body = json.dumps({"error": message}).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
