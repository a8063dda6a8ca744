"""What a slow client can hold: uvicorn's HTTP/1.1 protocol with a deadline for each request's head and a cap on
open connections, and a log that says so in a line instead of a traceback per refused connection.

uvicorn (0.5x) times out idle keep-alive connections but not one that trickles a header byte now and then, and
accepts connections until the process runs out of file descriptors; then every accept logs a traceback and
normal clients get no answer. Here each connection must send its request line and headers within
``Budget.header_timeout_seconds`` of connecting (or of its previous answer), and when ``max_connections`` are open
a new one closes the connection that has waited longest for its first request's head (then, if there is none,
the kept-alive one idle longest), else itself: slow clients are the ones dropped, while a client that sends its
request at once is served and keeps its connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import resource
import time
from typing import TYPE_CHECKING

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..budget import Budget
from ..nn._threads import one_blas_thread

if TYPE_CHECKING:
    from starlette.types import ASGIApp as ASGIApplication

FD_RESERVE = 64  # descriptors kept for everything but connections: the loop, logs, model and static files
ACCEPT_BACKLOG = 128  # the listen queue, also how many connections asyncio accepts at once before any is seen
# Accept batches that may land before the connections they hold are seen and dropped (each one loop iteration
# later, and the descriptor closed one more iteration later): room for them keeps accept() from failing.
ACCEPT_BATCHES_IN_FLIGHT = 3
MIN_CONNECTIONS = 16
LOG_INTERVAL_SECONDS = 10.0  # one line per kind of connection trouble per interval, with a count


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so that connections, the accept batches in flight and the reserve fit the descriptor
    limit (576 connections at the usual limit of 1,024)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(MIN_CONNECTIONS, min(wanted, soft - FD_RESERVE - ACCEPT_BATCHES_IN_FLIGHT * ACCEPT_BACKLOG))


class ConnectionGuard:
    """Shared by one server's connections: which are open, and which wait for a request head, oldest first."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open: set[GuardedH11Protocol] = set()
        # Connections waiting for a request head, in insertion order (the longest waiting first): those that have
        # not sent a whole one yet, and kept-alive ones that have (a client that is known to send its requests).
        self.waiting: dict[GuardedH11Protocol, None] = {}
        self.idle: dict[GuardedH11Protocol, None] = {}
        self.dropped = 0

    def admit(self, connection: GuardedH11Protocol) -> None:
        """Count a new connection; at the cap, close the one waiting longest for its first head, else the one
        idle longest, else this one."""
        self.open.add(connection)
        if len(self.open) <= self.max_connections:
            return
        victim = next((other for other in (*self.waiting, *self.idle) if other is not connection), connection)
        self.dropped += 1
        victim.drop()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline and a place under ``ConnectionGuard``'s cap."""

    def __init__(self, *args, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.head_timer: asyncio.TimerHandle | None = None
        self.served = False  # has answered a request on this connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's head arrived (its body has its own deadline)
            self._head_arrived()

    def on_response_complete(self) -> None:
        self.served = True
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        self.guard.open.discard(self)
        super().connection_lost(exc)

    def drop(self) -> None:
        """Close the connection without an answer (a slow head, or room needed for another connection)."""
        self._head_arrived()
        if not self.transport.is_closing():
            if self.conn.our_state is not h11.ERROR:
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()

    def _await_head(self) -> None:
        self._head_arrived()
        self.head_timer = self.loop.call_later(self.guard.header_timeout, self.drop)
        (self.guard.idle if self.served else self.guard.waiting)[self] = None

    def _head_arrived(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        self.guard.waiting.pop(self, None)
        self.guard.idle.pop(self, None)


class ConnectionTroubleFilter(logging.Filter):
    """At most one line per message per ``interval`` seconds, without the traceback, for the loggers that report
    connection trouble (asyncio's "socket.accept() out of system resource", uvicorn's "Invalid HTTP request")."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        self.last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and not isinstance(error, OSError):
            return True  # a bug, not a client: keep its traceback
        key = str(record.msg)
        now = time.monotonic()
        shown, suppressed = self.last.get(key, (-math.inf, 0))
        if now - shown < self.interval:
            self.last[key] = (shown, suppressed + 1)
            return False
        self.last[key] = (now, 0)
        record.exc_info, record.exc_text = None, None
        if error is not None:
            record.msg = f"{key}: {error.strerror or error}"
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} more like it in the last {self.interval:g} s)"
        return True


def serve(app: ASGIApplication, host: str, port: int, budget: Budget) -> None:
    """Run ``app`` with uvicorn until interrupted, slow clients bounded as this module's docstring says."""
    import uvicorn

    guard = ConnectionGuard(connection_cap(budget.max_connections), budget.header_timeout_seconds)
    quiet = ConnectionTroubleFilter()
    loggers = [logging.getLogger(name) for name in ("asyncio", "uvicorn.error")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        # One drawing is a small product: a second BLAS thread only adds the wait for it (8 ms a drawing instead
        # of 0.3 ms when other programs keep the cores busy); concurrent requests use the other cores. Chosen once
        # for the process, never flipped per request.
        with one_blas_thread():
            uvicorn.run(app, host=host, port=port, log_level="warning", reload=False, access_log=False,
                        http=functools.partial(GuardedH11Protocol, guard=guard), backlog=ACCEPT_BACKLOG,
                        timeout_keep_alive=budget.header_timeout_seconds)
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
