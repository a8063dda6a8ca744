"""Load test of the doodle app: concurrent clients against a server this script starts on 127.0.0.1.

    python benchmarks/app_load.py [--duration 3] [--concurrency 1 8 32]

The server runs in its own process (as ``NeuralNetworks app`` would), serving the shipped models, or small
untrained stand-ins when those are absent (the work per request is the same: preprocessing + one forward pass).
Each scenario runs for ``--duration`` seconds per concurrency level; then the server is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

SERVER_START_SECONDS = 30
SERVER_STOP_SECONDS = 10  # then the server is killed
REQUEST_TIMEOUT_SECONDS = 10
MAX_REQUESTS_PER_RUN = 100_000  # a hard stop, whatever the duration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def model_files(folder: Path) -> tuple[dict[str, Path], str]:
    """The shipped models if present, else untrained stand-ins with the same shapes of work."""
    from NeuralNetworks.app import registry
    from NeuralNetworks.nn import layers, models

    if all(path.is_file() for path in registry.SHIPPED_MODELS.values()):
        return dict(registry.SHIPPED_MODELS), "shipped models"
    paths = {}
    for name, labels in {"doodles": [f"class{i}" for i in range(10)], "digits": [str(d) for d in range(10)]}.items():
        model = models.Sequential(seed=0)
        model.add(layers.Rescaling(1 / 255, input_shape=(28, 28)))
        model.add(layers.Flatten())
        model.add(layers.Dense(256, activation="relu"))
        model.add(layers.Dense(128, activation="relu"))
        model.add(layers.Dense(10, activation="softmax"))
        paths[name] = model.save(folder / f"{name}.npz", labels=labels)
    return paths, "untrained 784-256-128-10 stand-ins (shipped models absent)"


def server_command(paths: dict[str, Path], port: int) -> list[str]:
    """The command serving ``paths`` (name -> model file) on 127.0.0.1:``port`` as ``NeuralNetworks.app.run``."""
    code = ("import sys; from NeuralNetworks.app import run; "
            f"run(port={port}, model_paths={{k: v for k, v in zip({list(paths)!r}, sys.argv[1:])}})")
    return [sys.executable, "-c", code, *map(str, paths.values())]


def start_server(paths: dict[str, Path], port: int) -> subprocess.Popen:
    return subprocess.Popen(server_command(paths, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()


def wait_until_up(base_url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:  # its error output, unless it went to a log file (slow_clients.py)
            said = server.stderr.read().decode(errors="replace")[-2000:] if server.stderr else "see its log"
            raise RuntimeError(f"the server exited with status {server.returncode}: {said}")
        try:
            if httpx.get(f"{base_url}/api/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {SERVER_START_SECONDS} s")


def canvas_data_url() -> str:
    image = Image.new("RGB", (400, 400), "white")
    ImageDraw.Draw(image).ellipse((80, 80, 320, 320), outline="black", width=14)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scenarios() -> dict[str, tuple[str, str, dict | None]]:
    circle = [[[200 + 120 * math.cos(a), 200 + 120 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 120)]]
    return {
        "GET /api/models": ("GET", "/api/models", None),
        "predict strokes (120 points)": ("POST", "/api/predict", {"model": "doodles", "strokes": circle}),
        "predict digit strokes": ("POST", "/api/predict", {"model": "digits", "strokes": circle}),
        "predict 400x400 PNG": ("POST", "/api/predict", {"model": "doodles", "image": canvas_data_url()}),
        "empty canvas (422 expected)": ("POST", "/api/predict", {"strokes": []}),
    }


async def run_load(base_url: str, method: str, path: str, body: dict | None, clients: int,
                   duration: float) -> tuple[int, float, list[float], int]:
    """``clients`` concurrent loops for ``duration`` s; returns requests, seconds, latencies, errors."""
    latencies: list[float] = []
    errors = 0
    expected = 422 if body == {"strokes": []} else 200
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        stop = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop and len(latencies) + errors < MAX_REQUESTS_PER_RUN:
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    ok = response.status_code == expected
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return len(latencies) + errors, elapsed, latencies, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario and level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    args = parser.parse_args(argv)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        paths, what = model_files(Path(folder))
        server = start_server(paths, port)
        try:
            wait_until_up(base_url, server)
            print(f"server: {base_url} ({what}); {args.duration:g} s per row\n")
            header = (f"{'scenario':<30} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                      f"{'errors':>6}")
            print(header)
            print("-" * len(header))
            for name, (method, path, body) in scenarios().items():
                for clients in args.concurrency:
                    total, elapsed, latencies, errors = asyncio.run(
                        run_load(base_url, method, path, body, clients, args.duration))
                    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if latencies else (math.nan, math.nan)
                    print(f"{name:<30} {clients:>7} {total:>8} {total / elapsed:>8.1f} {p50:>8.1f} {p99:>8.1f} "
                          f"{errors:>6}", flush=True)
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
