"""Your own data: a folder of PNG drawings against the same drawings in memory, and two scikit-learn tables as CSV.

    python benchmarks/own_data.py [--quick] [--images 10000] [--parts folder tables]

**folder**: ``--images`` QuickDraw drawings (../shared/data/quickdraw, else the built-in shapes) are written as
PNG files, dark ink on light paper, one subfolder per class, into a temporary folder. Each measurement runs in a
fresh child process: loading the folder with ``data.load("folder")`` in memory and through the memory-mapped
cache (``cache_dir``), against loading the same drawings from the ``.npy`` arrays; then one epoch of the default
MLP (batch 128) on each. Reported: seconds, the peak of NumPy allocations during the load (tracemalloc, which
does not count a memory map's pages) and the growth of the resident set (VmHWM), and training samples/s.

**tables**: scikit-learn's breast cancer (class names as text) and diabetes tables written as CSV, trained with
``NeuralNetworks train --data ... --target ...`` (the defaults) and scored on its held-back split; beside it
``MLPClassifier`` / ``MLPRegressor`` (the same hidden layers, 64 and 32) trained on the same training rows
(training + validation split), standardised with the same statistics.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUICKDRAW = ROOT.parent / "shared" / "data" / "quickdraw"
CLASSES = 10
BATCH = 128
QUICK_IMAGES = 600
MIB = 2**20
HIDDEN = (64, 32)  # presets.table_mlp's hidden layers


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def write_drawings(folder: Path, arrays: Path, images: int) -> str:
    """``images`` drawings as PNG files under ``folder/<class>/`` (as evenly over the classes as their files
    allow), and the same drawings as ``arrays`` (.npz of x, y); returns where they came from."""
    from PIL import Image

    from NeuralNetworks import data

    if QUICKDRAW.is_dir():
        names = data.list_classes(QUICKDRAW)[:CLASSES]
        available = [len(np.load(QUICKDRAW / f"{name}.npy", mmap_mode="r")) for name in names]
        source = f"QuickDraw ({QUICKDRAW})"
    else:
        names = list(data.SHAPE_CLASSES)
        available = [images] * len(names)
        source = "the built-in shapes"
    counts = [0] * len(names)
    while sum(counts) < images and counts != available:  # fill the classes evenly, as far as each one goes
        for index in range(len(names)):
            if counts[index] < available[index] and sum(counts) < images:
                counts[index] += 1
    xs, ys = [], []
    for label, (name, count) in enumerate(zip(names, counts, strict=True)):
        if QUICKDRAW.is_dir():
            bitmaps = np.asarray(np.load(QUICKDRAW / f"{name}.npy", mmap_mode="r")[:count]).reshape(-1, 28, 28)
        else:
            bitmaps = data.load("shapes", classes=[name], samples_per_class=count).x_train[:count, :, :, 0]
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index, bitmap in enumerate(bitmaps):
            Image.fromarray(255 - bitmap, "L").save(folder / name / f"{index:05d}.png")
        xs.append(bitmaps[..., None])
        ys.append(np.full(len(bitmaps), label))
    np.savez(arrays, x=np.concatenate(xs), y=np.concatenate(ys))
    return source


def _child(kind: str, folder: str, cache: str) -> dict:
    from NeuralNetworks import data
    from NeuralNetworks.data.splits import Dataset, stratified_split_indices
    from NeuralNetworks.nn import presets

    tracemalloc.start()
    _reset_peak()
    rss = _status_kib("VmRSS")
    start = time.perf_counter()
    if kind == "arrays":  # the same drawings, inverted back, as 28x28 uint8 arrays; the same 80/20 split
        with np.load(Path(cache).parent / "arrays.npz") as stored:
            x, y = 255 - stored["x"], stored["y"]
        train, test = stratified_split_indices(y, 0.2, np.random.default_rng(0))
        dataset = Dataset(x[train], y[train], x[test], y[test], label_dict=dict(enumerate(map(str, np.unique(y)))))
    else:
        dataset = data.load("folder", data_dir=folder, cache_dir=cache if kind == "cache" else None)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    grown = (_status_kib("VmHWM") - rss) * 1024
    tracemalloc.stop()
    model = presets.default_mlp(dataset.input_shape, dataset.num_classes, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    start = time.perf_counter()
    model.fit(dataset.x_train, dataset.y_train, epochs=1, batch_size=BATCH, verbose=0)
    rate = len(dataset.y_train) / (time.perf_counter() - start)
    return {"seconds": seconds, "peak": peak, "rss": grown, "rate": rate, "samples": len(dataset.y_train)}


def folder_part(images: int) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder, cache = Path(temporary) / "drawings", Path(temporary) / "cache"
        cache.mkdir()
        start = time.perf_counter()
        source = write_drawings(folder, Path(temporary) / "arrays.npz", images)
        written = len(list(folder.glob("*/*.png")))
        print(f"\n{written} PNG drawings from {source}, written in {time.perf_counter() - start:.1f} s "
              f"({sum(p.stat().st_size for p in folder.glob('*/*.png')) / MIB:.1f} MiB)\n")
        print("| data | load s | decoded/s | NumPy peak MiB | RSS growth MiB | train samples/s (MLP, 1 epoch) |")
        print("| --- | --- | --- | --- | --- | --- |")
        names = {"arrays": "the same drawings, .npy in memory", "memory": "PNG folder, decoded into memory",
                 "cache": "PNG folder, decoded once into the memory-mapped cache"}
        for kind, name in names.items():
            completed = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), str(cache)],
                                       capture_output=True, text=True, check=True)
            result = json.loads(completed.stdout.splitlines()[-1])
            decoded = f"{written / result['seconds']:,.0f}" if kind != "arrays" else "-"
            print(f"| {name} | {result['seconds']:.2f} | {decoded} | {result['peak'] / MIB:.1f} | "
                  f"{result['rss'] / MIB:.1f} | {result['rate']:,.0f} |")


def _write_csv(path: Path, features: np.ndarray, names: list[str], target: list[str], target_name: str) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, target_name])
        writer.writerows([*(f"{value:.6g}" for value in row), label] for row, label in zip(features, target,
                                                                                          strict=True))


def tables_part() -> None:
    import warnings

    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from NeuralNetworks import data
    from NeuralNetworks.cli import main
    from NeuralNetworks.data.table import decode_targets

    print("\n| table | rows | task | NeuralNetworks train (defaults) | scikit-learn MLP, same split |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as temporary:
        cancer, diabetes = load_breast_cancer(), load_diabetes(scaled=False)
        tables = {
            "breast cancer": (cancer.data, list(cancer.feature_names), [cancer.target_names[y] for y in cancer.target],
                              "diagnosis"),
            "diabetes": (diabetes.data, list(diabetes.feature_names), [f"{y:.1f}" for y in diabetes.target],
                         "progression"),
        }
        for name, (features, columns, target, target_name) in tables.items():
            path = Path(temporary) / f"{name.replace(' ', '_')}.csv"
            _write_csv(path, features, columns, target, target_name)
            printed = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                main(["train", "--data", str(path), "--target", target_name, "--quiet",
                      "--out", str(Path(temporary) / "model.npz"), "--plot", str(Path(temporary) / "h.png")])
            seconds = time.perf_counter() - start
            ours = next(line for line in printed.getvalue().splitlines() if line.startswith("test "))
            dataset = data.load("csv", path=path, target=target_name, validation_fraction=0.1)
            x_train = np.concatenate([dataset.x_train, dataset.x_val])
            y_train = np.concatenate([dataset.y_train, dataset.y_val])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                if dataset.task == "regression":
                    spec = dataset.preprocessing
                    model = MLPRegressor(hidden_layer_sizes=HIDDEN, max_iter=2000, random_state=0)
                    predicted = model.fit(x_train, decode_targets(y_train, spec)).predict(dataset.x_test)
                    theirs = f"R² {r2_score(decode_targets(dataset.y_test, spec), predicted):.4f}"
                else:
                    model = MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=2000, random_state=0)
                    theirs = f"accuracy {model.fit(x_train, y_train).score(dataset.x_test, dataset.y_test):.4f}"
            print(f"| {name} | {len(target)} | {dataset.task} | {ours.removeprefix('test ')} ({seconds:.1f} s) | "
                  f"{theirs} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images instead of --images")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--parts", nargs="+", choices=("folder", "tables"), default=["folder", "tables"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if "folder" in args.parts:
        folder_part(QUICK_IMAGES if args.quick else args.images)
    if "tables" in args.parts:
        tables_part()


if __name__ == "__main__":
    main()
