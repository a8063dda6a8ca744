"""The playground's acceptance figures: how fast a step request answers, and how well the defaults learn.

    python benchmarks/playground.py [--requests 40] [--seeds 0 1 2 3 4] [--steps 3000]

1. Latency: ``POST /api/playground/{ID}/step`` with ``{"steps": 100}`` for a network of two hidden layers of 16
   (the page asks for 10 steps per animation frame; 100 is ten frames' worth), measured over HTTP against a
   server this script starts in its own process, as the page sees it. Target: median <= 150 ms. Also the largest
   request the API accepts (6 x 16 units, batch 100, 500 steps), which bounds a request's time.
2. Learning: spirals and XOR with every default ([4, 4] tanh, Adam 0.03, batch 10, noise 0, half the points for
   training), test accuracy after ``--steps`` steps and the first multiple of 100 steps reaching the target
   (95% for spirals, 98% for XOR), per seed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from app_load import free_port, model_files, start_server, wait_until_up

LATENCY_TARGET_MS = 150
TARGETS = {"spirals": 0.95, "xor": 0.98}
CHECK_EVERY = 100  # steps between two accuracy checks
REQUEST_TIMEOUT_SECONDS = 30
WARMUP_REQUESTS = 3


def latency_rows(base_url: str, requests: int) -> list[tuple[str, list[float]]]:
    cases = {
        "2x16 tanh adam, batch 10, 100 steps": ({"dataset": "spirals", "hidden": [16, 16]}, 100),
        "defaults (2x4), batch 10, 10 steps (one frame)": ({"dataset": "spirals"}, 10),
        "6x16 sigmoid sgd, batch 100, 500 steps (largest)": (
            {"dataset": "spirals", "hidden": [16] * 6, "activation": "sigmoid", "optimizer": "sgd",
             "learning_rate": 0.1, "batch_size": 100}, 500),
    }
    rows = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for name, (settings, steps) in cases.items():
            response = client.post("/api/playground", json=settings)
            response.raise_for_status()
            session = response.json()["session"]
            times = []
            for index in range(WARMUP_REQUESTS + requests):
                started = time.perf_counter()
                response = client.post(f"/api/playground/{session}/step", json={"steps": steps})
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                if index >= WARMUP_REQUESTS:
                    times.append(elapsed)
            client.delete(f"/api/playground/{session}")
            rows.append((name, times))
    return rows


def learning_rows(seeds: list[int], steps: int) -> list[tuple[str, int, float, int | None, float]]:
    from NeuralNetworks.app.playground_run import Run, Settings

    rows = []
    for dataset, target in TARGETS.items():
        for seed in seeds:
            run = Run(Settings(dataset=dataset, seed=seed))
            reached = None
            started = time.perf_counter()
            while run.steps < steps:
                run.train(min(CHECK_EVERY, steps - run.steps))
                if reached is None and run.view()["test_accuracy"] >= target:
                    reached = run.steps
            rows.append((dataset, seed, run.view()["test_accuracy"], reached, time.perf_counter() - started))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="timed requests per latency case")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        paths, _ = model_files(Path(folder))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_server(paths, port)
        try:
            wait_until_up(base_url, server)
            rows = latency_rows(base_url, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=10)

    print(f"Step requests over HTTP ({args.requests} timed after {WARMUP_REQUESTS} warm-up; "
          f"target: median <= {LATENCY_TARGET_MS} ms for 100 steps of 2x16)\n")
    print("| request | median ms | p90 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in rows:
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"| {name} | {1000 * statistics.median(times):.1f} | {1000 * p90:.1f} | {1000 * ordered[-1]:.1f} |")

    print(f"\nLearning with the defaults, {args.steps} steps (targets: "
          + ", ".join(f"{name} >= {target:.0%}" for name, target in TARGETS.items()) + " test accuracy)\n")
    print(f"| dataset | seed | test accuracy after {args.steps} | first step at target (every {CHECK_EVERY}) "
          "| seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    failures = 0
    for dataset, seed, accuracy, reached, seconds in learning_rows(args.seeds, args.steps):
        failures += accuracy < TARGETS[dataset]
        print(f"| {dataset} | {seed} | {accuracy:.1%} | {reached if reached is not None else 'not reached'} "
              f"| {seconds:.1f} |")
    print(f"\n{failures} run(s) below target after {args.steps} steps.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
