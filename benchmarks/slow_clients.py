"""Slow clients against the doodle app: N connections that trickle header bytes while normal clients keep asking.

    python benchmarks/slow_clients.py [--slow 0 1000 2000] [--normal 100] [--duration 8] [--fd-limit 1024]

The server (``NeuralNetworks.app.run``, as ``NeuralNetworks app`` starts it) runs in its own process on 127.0.0.1
with its soft file-descriptor limit set to ``--fd-limit`` (the default 1,024 of most Linux sessions). For each N,
N slow clients connect and send one header byte every ``--trickle`` seconds, reconnecting ``--reconnect-delay``
seconds after the server drops them (as a slowloris tool does); after ``--warmup`` seconds, ``--normal``
concurrent clients each send predictions (a 120-point stroke drawing) one after the other for ``--duration``
seconds, while one more client (a "new visitor") opens a fresh connection for ``GET /api/models`` every 0.25 s.
The table gives the normal requests' latency percentiles, how many got a 5xx or no answer, the new visitor's
longest wait, how often the server dropped a slow client, and the bytes the server logged. Everything stops by
itself: bounded counts and time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from app_load import free_port, model_files, scenarios, server_command, stop_server, wait_until_up

MAX_SLOW_CLIENTS = 5000
MAX_NORMAL_CLIENTS = 500
MAX_SECONDS = 60  # per row, whatever the arguments
CLIENT_TIMEOUT_SECONDS = 10  # a normal request unanswered after this counts as "no answer"
HOST = "127.0.0.1"
PROBE_INTERVAL_SECONDS = 0.25
MAX_LOG_LINES_SHOWN = 5


def start_server(paths: dict[str, Path], port: int, fd_limit: int, log: Path) -> subprocess.Popen:
    """``NeuralNetworks.app.run`` in a child process whose soft descriptor limit is ``fd_limit``."""
    def limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(fd_limit, hard), hard))

    with open(log, "wb") as output:
        return subprocess.Popen(server_command(paths, port), stdout=output, stderr=subprocess.STDOUT,
                                preexec_fn=limit)


async def slow_client(port: int, stop: float, trickle: float, reconnect_delay: float, counts: dict) -> None:
    """Connect, send a request line, then one header byte per ``trickle`` s; reconnect when dropped."""
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            counts["refused"] += 1
            await asyncio.sleep(reconnect_delay)
            continue
        counts["connected"] += 1
        try:
            writer.write(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() < stop:
                await asyncio.sleep(trickle)
                writer.write(b"a")
                await writer.drain()
                if reader.at_eof():
                    raise ConnectionResetError
        except OSError:
            counts["dropped"] += 1
            await asyncio.sleep(reconnect_delay)
        finally:
            writer.close()


async def probe(port: int, stop: float, interval: float) -> tuple[list[float], int]:
    """One client asking ``GET /api/models`` on a fresh connection every ``interval`` s until ``stop``: the time
    one new visitor waits for an answer (connect included), and how many got none within CLIENT_TIMEOUT_SECONDS."""
    latencies: list[float] = []
    failed = 0
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT_SECONDS):
                reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(b"GET /api/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = await reader.read()
                writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
        except (OSError, TimeoutError):
            failed += 1
        await asyncio.sleep(interval)
    return latencies, failed


async def normal_clients(port: int, clients: int, duration: float) -> tuple[list[float], int, int, int]:
    """``clients`` concurrent loops of predictions for ``duration`` s: latencies, 5xx, no answer, other status."""
    _, path, body = scenarios()["predict strokes (120 points)"]
    latencies: list[float] = []
    server_errors = unanswered = other = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits,
                                 timeout=CLIENT_TIMEOUT_SECONDS) as client:
        stop = time.monotonic() + duration

        async def worker() -> None:
            nonlocal server_errors, unanswered, other
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    status = (await client.post(path, json=body)).status_code
                except httpx.HTTPError:
                    unanswered += 1
                    continue
                latencies.append(time.perf_counter() - started)
                server_errors += status >= 500
                other += status != 200 and status < 500

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, server_errors, unanswered, other


async def one_row(port: int, slow: int, args: argparse.Namespace) -> tuple[list[float], int, int, int, dict]:
    counts = {"connected": 0, "dropped": 0, "refused": 0}
    stop = time.monotonic() + args.warmup + args.duration
    slow_tasks = [asyncio.create_task(slow_client(port, stop, args.trickle, args.reconnect_delay, counts))
                  for _ in range(slow)]
    await asyncio.sleep(args.warmup)
    prober = asyncio.create_task(probe(port, time.monotonic() + args.duration, PROBE_INTERVAL_SECONDS))
    result = await normal_clients(port, args.normal, args.duration)
    counts["probe"] = await prober
    for task in slow_tasks:
        task.cancel()
    await asyncio.gather(*slow_tasks, return_exceptions=True)
    return (*result, counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, nargs="+", default=[0, 1000, 2000], help="slow clients per row")
    parser.add_argument("--normal", type=int, default=100, help="concurrent normal clients")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of normal requests per row")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds the slow clients get first")
    parser.add_argument("--trickle", type=float, default=1.0, help="seconds between a slow client's bytes")
    parser.add_argument("--reconnect-delay", type=float, default=0.5, help="seconds before a dropped one reconnects")
    parser.add_argument("--fd-limit", type=int, default=1024, help="the server's soft file-descriptor limit")
    args = parser.parse_args(argv)
    if max(args.slow) > MAX_SLOW_CLIENTS or args.normal > MAX_NORMAL_CLIENTS or \
            args.warmup + args.duration > MAX_SECONDS:
        parser.error(f"at most {MAX_SLOW_CLIENTS} slow and {MAX_NORMAL_CLIENTS} normal clients, {MAX_SECONDS} s a row")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(args.slow) + args.normal + 256  # this process holds every client's socket
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            parser.error(f"this process needs {wanted} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    print(f"server on {HOST} with a soft descriptor limit of {args.fd_limit}; {args.normal} normal clients for "
          f"{args.duration:g} s per row, slow clients trickle a byte every {args.trickle:g} s\n")
    header = (f"{'slow':>6} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'5xx':>5} {'no answer':>9} "
              f"{'new visitor max ms':>18} {'slow dropped':>12} {'log bytes':>9}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as folder:
        paths, _ = model_files(Path(folder))
        for slow in args.slow:
            port = free_port()
            log = Path(folder) / f"server-{slow}.log"
            server = start_server(paths, port, args.fd_limit, log)
            try:
                wait_until_up(f"http://{HOST}:{port}", server)
                latencies, server_errors, unanswered, other, counts = asyncio.run(one_row(port, slow, args))
            finally:
                stop_server(server)
            p50, p99, worst = (np.percentile(latencies, [50, 99, 100]) * 1000 if latencies else [math.nan] * 3)
            visits, missed = counts["probe"]
            visitor = f"{max(visits) * 1000:.0f}" + (f" ({missed} unanswered)" if missed else "") if visits else "none"
            print(f"{slow:>6} {len(latencies) + unanswered:>8} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f} "
                  f"{server_errors:>5} {unanswered:>9} {visitor:>18} {counts['dropped']:>12} "
                  f"{log.stat().st_size:>9}", flush=True)
            if other:
                print(f"       ({other} answers other than 200 and 5xx)")
            logged = [line for line in log.read_text(errors="replace").splitlines()[1:] if line.strip()]
            for line in logged[:MAX_LOG_LINES_SHOWN]:  # what the server said beyond its banner
                print(f"       log: {line[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
