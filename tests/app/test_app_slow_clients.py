"""What slow clients can hold: the app as ``run`` serves it (a real uvicorn in a child process whose descriptor
limit is low), against connections that trickle header bytes. They are dropped after the header deadline or when
room is needed; normal requests keep being answered, concurrently and without a 5xx; refused connections are
logged in a line, never as a traceback per connection."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from NeuralNetworks.app.connections import ACCEPT_BACKLOG, ACCEPT_BATCHES_IN_FLIGHT, FD_RESERVE, connection_cap

FD_LIMIT = 512  # the child's soft limit: room for connection_cap(...) = 64 connections
HEADER_TIMEOUT = 1.0
SLOW_CLIENTS = 700  # more than the child's descriptors allow, ten times its connection cap
NORMAL_CLIENTS = 100
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_files, tmp_path_factory):
    """``(base_url, log_path)`` of ``NeuralNetworks.app.run`` with a 1 s header deadline, descriptors at 512."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SLOW_CLIENTS + NORMAL_CLIENTS + 64:
        pytest.skip(f"the descriptor limit ({hard}) is too low for this test's clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                                                    SLOW_CLIENTS + NORMAL_CLIENTS + 64), hard))
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    code = ("import sys; from NeuralNetworks.app import run; from NeuralNetworks.budget import Budget; "
            f"run(port={port}, model_paths={{'doodles': sys.argv[1]}}, "
            f"budget=Budget(header_timeout_seconds={HEADER_TIMEOUT}))")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))

    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-c", code, str(model_files["doodles"])], stdout=output,
                                   stderr=subprocess.STDOUT, preexec_fn=limit)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base_url}/api/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield base_url, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def slow_connection(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    connection.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return connection


def is_closed_by_server(connection: socket.socket, wait: float) -> bool:
    connection.settimeout(wait)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_the_connection_cap_leaves_room_under_the_descriptor_limit():
    room = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - FD_RESERVE - ACCEPT_BATCHES_IN_FLIGHT * ACCEPT_BACKLOG
    assert connection_cap(10**6) <= room
    assert connection_cap(10) == 16  # never fewer than a handful, whatever is asked


def test_a_client_trickling_its_headers_is_dropped_at_the_deadline(server):
    base_url, _ = server
    connection = slow_connection(base_url)
    with connection:
        for _ in range(3):  # a byte every 0.4 s keeps no deadline from running out
            time.sleep(HEADER_TIMEOUT * 0.4)
            try:
                connection.sendall(b"a")
            except OSError:
                break
        assert is_closed_by_server(connection, wait=HEADER_TIMEOUT * 3)


def test_normal_requests_are_answered_while_slow_clients_hold_every_descriptor(server):
    base_url, log = server
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            try:
                slow.append(slow_connection(base_url))
            except OSError:
                break  # the listen queue is full: the server is holding as much as it will
        time.sleep(0.2)
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: httpx.get(f"{base_url}/api/models", timeout=10).status_code,
                                     range(NORMAL_CLIENTS)))
        assert statuses == [200] * NORMAL_CLIENTS
        assert sum(is_closed_by_server(connection, wait=0.01) for connection in slow) > 0  # dropped for room
    finally:
        for connection in slow:
            connection.close()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and len(text) < 10_000


def test_a_hundred_concurrent_normal_requests_get_no_5xx(server):
    base_url, _ = server

    def ask(_: int) -> int:
        return httpx.get(f"{base_url}/api/models", timeout=10).status_code

    with ThreadPoolExecutor(NORMAL_CLIENTS) as pool:
        assert list(pool.map(ask, range(NORMAL_CLIENTS))) == [200] * NORMAL_CLIENTS
