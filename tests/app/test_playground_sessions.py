"""The bounded session store the playground (and other per-user features) keep their state in."""

from __future__ import annotations

import threading

import pytest

from NeuralNetworks.app.sessions import SessionBusy, SessionNotFound, SessionStore, SessionStoreFull


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_create_get_delete():
    store = SessionStore("test", max_sessions=4, idle_seconds=60)
    first, second = store.create("a"), store.create("b")
    assert first != second and len(first) >= 32
    assert store.get(first) == "a" and store.get(second) == "b"
    store.delete(first)
    with pytest.raises(SessionNotFound, match="Unknown test session") as caught:
        store.get(first)
    assert caught.value.status_code == 404
    assert len(store) == 1


@pytest.mark.parametrize("session", ["", "x" * 10_000, None, 3, "../../etc"])
def test_hostile_ids_are_not_found(session):
    store = SessionStore("test", max_sessions=2, idle_seconds=60)
    store.create("a")
    with pytest.raises(SessionNotFound):
        store.get(session)


def test_full_store_refuses_until_a_session_expires():
    clock = Clock()
    store = SessionStore("test", max_sessions=2, idle_seconds=60, clock=clock)
    kept = store.create(1)
    store.create(2)
    with pytest.raises(SessionStoreFull, match="limit of 2 test sessions") as caught:
        store.create(3)
    assert caught.value.status_code == 503
    clock.now += 40
    store.get(kept)  # used: its expiry starts again
    clock.now += 30  # the other one is now 70 s idle
    third = store.create(3)
    assert store.get(kept) == 1 and store.get(third) == 3 and len(store) == 2
    clock.now += 61
    with pytest.raises(SessionNotFound):
        store.get(kept)


def test_lock_runs_one_request_at_a_time_and_refuses_when_busy():
    store = SessionStore("test", max_sessions=2, idle_seconds=60, lock_wait_seconds=0.05)
    session = store.create([])
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock(session) as value:
            value.append("held")
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    assert inside.wait(5)
    with pytest.raises(SessionBusy) as caught, store.lock(session):
        pass
    assert caught.value.status_code == 409
    release.set()
    worker.join(5)
    with store.lock(session) as value:
        assert value == ["held"]


def test_a_session_in_use_does_not_expire_under_its_request():
    clock = Clock()
    store = SessionStore("test", max_sessions=1, idle_seconds=60, clock=clock)
    session = store.create("v")
    with store.lock(session):
        clock.now += 1000
        assert len(store) == 1
    assert store.get(session) == "v"


@pytest.mark.parametrize("arguments", [{"max_sessions": 0}, {"max_sessions": True}, {"idle_seconds": -1},
                                       {"idle_seconds": float("inf")}])
def test_bad_limits_are_refused(arguments):
    with pytest.raises(ValueError, match="must be a positive"):
        SessionStore("test", **{"max_sessions": 2, "idle_seconds": 60, **arguments})
