"""Teach: how fast and how well a session learns classes the doodles base never saw, from 20 examples a class.

    python benchmarks/teach.py [--examples 20] [--test-per-class 100] [--repeats 3] [--as images pixels]

Everything goes through the app's HTTP API in this process (FastAPI's test client, the shipped doodles model as
the base): a session is started, ``--examples`` images of each class are added (as PNG data URLs, as an upload
would send them, or as ``pixels``), the session trains, and ``--test-per-class`` other images of each class are
classified through ``/api/teach/{id}/predict``. The images are MNIST digits and Fashion-MNIST garments from
``../shared/data`` (rows whose folder is absent are skipped). Printed: seconds to add the examples (each one's
features are computed then), seconds of the training itself, accuracy on the examples and on the other images:
the median over ``--repeats`` draws of the examples, with the lowest and highest accuracy.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GARMENTS = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# (dataset, classes by index): a few classes, then all ten
TASKS = [("mnist", (0, 1, 2, 3, 4)), ("mnist", tuple(range(10))),
         ("fashion-mnist", (0, 1, 5, 8, 9)), ("fashion-mnist", tuple(range(10)))]
UPSCALE = 4  # the 28x28 images are sent as 112x112 PNGs, nearest-neighbour, like a small upload


def data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).resize((28 * UPSCALE, 28 * UPSCALE), Image.NEAREST).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def drawing(image: np.ndarray, fed_as: str) -> dict:
    return {"image": data_url(image)} if fed_as == "images" else {"pixels": image.tolist()}


def load(dataset: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    from NeuralNetworks.data import load_fashion_mnist, load_mnist

    folder = DATA / dataset
    if not folder.is_dir():
        return None
    loaded = (load_mnist if dataset == "mnist" else load_fashion_mnist)(folder, test_only=True)
    names = [str(digit) for digit in range(10)] if dataset == "mnist" else list(GARMENTS)
    return loaded.x_test[..., 0], loaded.y_test, names


def run_once(client, images, labels, names, classes, args, fed_as: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    chosen = {cls: rng.permutation(np.flatnonzero(labels == cls)) for cls in classes}
    session = client.post("/api/teach", json={"base": "doodles"}).json()["session"]
    started = time.perf_counter()
    for cls in classes:
        for index in chosen[cls][:args.examples]:
            response = client.post(f"/api/teach/{session}/examples",
                                   json={"label": names[cls], **drawing(images[index], fed_as)})
            response.raise_for_status()
    added = time.perf_counter() - started
    response = client.post(f"/api/teach/{session}/train")
    response.raise_for_status()
    trained = response.json()
    correct = total = 0
    for cls in classes:
        for index in chosen[cls][args.examples:args.examples + args.test_per_class]:
            answer = client.post(f"/api/teach/{session}/predict", json=drawing(images[index], fed_as)).json()
            correct += answer["label"] == names[cls]
            total += 1
    client.delete(f"/api/teach/{session}")
    return {"add": added, "train": trained["seconds"], "fit": trained["accuracy"], "test": correct / total,
            "tested": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20, help="examples per class (default 20)")
    parser.add_argument("--test-per-class", type=int, default=100, help="other images classified per class")
    parser.add_argument("--repeats", type=int, default=3, help="draws of the examples (default 3)")
    parser.add_argument("--as", dest="fed_as", nargs="+", choices=("images", "pixels"), default=["images"],
                        help="how the examples are sent (default: images)")
    args = parser.parse_args(argv)

    from NeuralNetworks.app import create_app, registry

    base = registry.SHIPPED_MODELS["doodles"]
    if not base.is_file():
        print(f"{base} (the shipped doodles model) is absent: nothing to measure", file=sys.stderr)
        return 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice that its test client may move to httpx2
        from fastapi.testclient import TestClient

    print(f"Teach on the doodles base: {args.examples} examples a class, {args.test_per_class} other images a class "
          f"tested, median of {args.repeats} draws (accuracy: lowest-highest)\n")
    print("| data | classes | sent as | add examples (s) | train (s) | on the examples | on other images |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    with TestClient(create_app({"doodles": base})) as client:
        for dataset, classes in TASKS:
            loaded = load(dataset)
            if loaded is None:
                print(f"| {dataset} | (absent: {DATA / dataset}) | | | | | |")
                continue
            images, labels, names = loaded
            shown = ", ".join(names[cls] for cls in classes) if len(classes) < 10 else "all 10"
            for fed_as in args.fed_as:
                runs = [run_once(client, images, labels, names, classes, args, fed_as, seed)
                        for seed in range(args.repeats)]
                tests = [run["test"] for run in runs]
                print(f"| {dataset} | {shown} | {fed_as} | {statistics.median(r['add'] for r in runs):.1f} | "
                      f"{statistics.median(r['train'] for r in runs):.2f} | "
                      f"{statistics.median(r['fit'] for r in runs):.1%} | {statistics.median(tests):.1%} "
                      f"({min(tests):.1%}-{max(tests):.1%}, n={runs[0]['tested']}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
