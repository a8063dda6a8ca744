"""A bounded in-memory store of per-user sessions (the playground's networks, the Teach feature's state).

Each session is a value kept under a random, unguessable id (``secrets.token_urlsafe``) that only its creator
learns. The store holds at most ``max_sessions`` at once, forgets a session ``idle_seconds`` after its last use
(measured with ``time.monotonic``, so changing the wall clock changes nothing), and gives each session a lock so
that one session's work runs one request at a time while different sessions run in parallel::

    store = SessionStore("playground", max_sessions=MAX_SESSIONS, idle_seconds=IDLE_SECONDS)
    app.state.playground = store                  # one store per app, made in create_app: no module-level state
    session = store.create(value)                 # SessionStoreFull when full
    with store.lock(session) as value:            # SessionNotFound, SessionBusy
        ...                                       # only this request touches `value` now

The errors are Starlette ``HTTPException`` subclasses carrying their status (404, 409, 503), so a route may let
them propagate: the app's handler answers ``{"error": message}`` with that status.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from starlette.exceptions import HTTPException

MAX_SESSIONS = 64  # sessions alive at once per store, unless the store is given another number
IDLE_SECONDS = 30 * 60.0  # a session unused this long is forgotten
LOCK_WAIT_SECONDS = 10.0  # how long a request waits for its session's previous request to finish
ID_BYTES = 24  # random bytes of a session id (32 URL-safe characters)
MAX_ID_CHARS = 64  # a longer id cannot be one of ours: refused without looking it up
NOT_FOUND, CONFLICT, UNAVAILABLE = 404, 409, 503

Value = TypeVar("Value")


class SessionError(HTTPException):
    """A session request the store cannot serve; ``status_code`` is the HTTP status, ``detail`` the message."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(self.status, message)

    def __str__(self) -> str:
        return str(self.detail)


class SessionNotFound(SessionError):
    """No such session: never created, expired after inactivity, or deleted."""

    status = NOT_FOUND


class SessionBusy(SessionError):
    """The session's previous request is still running after ``LOCK_WAIT_SECONDS``."""

    status = CONFLICT


class SessionStoreFull(SessionError):
    """``max_sessions`` sessions are alive and none has expired: try again later."""

    status = UNAVAILABLE


@dataclass
class _Entry(Generic[Value]):
    value: Value
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionStore(Generic[Value]):
    """At most ``max_sessions`` values of one ``kind`` (a word used in error messages, e.g. "playground"),
    each forgotten ``idle_seconds`` after its last ``get``/``lock``; thread-safe."""

    def __init__(self, kind: str, max_sessions: int = MAX_SESSIONS, idle_seconds: float = IDLE_SECONDS, *,
                 lock_wait_seconds: float = LOCK_WAIT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"`max_sessions` must be a positive integer. Received: {max_sessions!r}")
        for name, value in (("idle_seconds", idle_seconds), ("lock_wait_seconds", lock_wait_seconds)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"`{name}` must be a positive finite number of seconds. Received: {value!r}")
        self.kind = kind
        self.max_sessions = max_sessions
        self.idle_seconds = float(idle_seconds)
        self.lock_wait_seconds = float(lock_wait_seconds)
        self._clock = clock
        self._entries: dict[str, _Entry[Value]] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        """Sessions alive now (expired ones are dropped first)."""
        with self._guard:
            self._expire(self._clock())
            return len(self._entries)

    def create(self, value: Value) -> str:
        """Keep ``value`` under a new random id and return the id; ``SessionStoreFull`` if no room is left."""
        with self._guard:
            now = self._clock()
            self._expire(now)
            if len(self._entries) >= self.max_sessions:
                raise SessionStoreFull(f"The server already holds its limit of {self.max_sessions} {self.kind} "
                                       "sessions (max_sessions); try again in a few minutes")
            session = secrets.token_urlsafe(ID_BYTES)
            while session in self._entries:  # 192 random bits: never in practice
                session = secrets.token_urlsafe(ID_BYTES)
            self._entries[session] = _Entry(value, now)
            return session

    def get(self, session: str) -> Value:
        """The value of ``session``, whose expiry starts again; ``SessionNotFound`` if there is none."""
        with self._guard:
            return self._find(session).value

    def delete(self, session: str) -> None:
        """Forget ``session`` (a request holding its lock keeps its value until it ends); absent ids are ignored."""
        with self._guard:
            if isinstance(session, str):
                self._entries.pop(session, None)

    @contextmanager
    def lock(self, session: str) -> Iterator[Value]:
        """Hold ``session``'s lock for the ``with`` block and yield its value; ``SessionNotFound`` if there is no
        such session, ``SessionBusy`` if another request holds it for longer than ``lock_wait_seconds``."""
        with self._guard:
            entry = self._find(session)
        if not entry.lock.acquire(timeout=self.lock_wait_seconds):
            raise SessionBusy(f"This {self.kind} session is busy with another request; retry when it has answered")
        try:
            yield entry.value
        finally:
            with self._guard:
                entry.last_used = self._clock()
            entry.lock.release()

    def _find(self, session: str) -> _Entry[Value]:
        """The live entry of ``session``, refreshed; call with ``_guard`` held."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(session) if isinstance(session, str) and len(session) <= MAX_ID_CHARS else None
        if entry is None:
            raise SessionNotFound(f"Unknown {self.kind} session: it never existed or expired after "
                                  f"{self.idle_seconds / 60:g} minutes unused; create a new one")
        entry.last_used = now
        return entry

    def _expire(self, now: float) -> None:
        """Drop sessions idle for ``idle_seconds``, except those a request is using; call with ``_guard`` held."""
        stale = [key for key, entry in self._entries.items()
                 if now - entry.last_used >= self.idle_seconds and not entry.lock.locked()]
        for key in stale:
            del self._entries[key]
