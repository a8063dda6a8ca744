"""Deployment figures: ONNX and in-browser parity, the page's prediction time, and scikit-learn's digits score.

    python benchmarks/deploy.py [--data ../shared/data] [--images 500] [--drawings 500] [--cv 5] [--threads 1]
    python benchmarks/deploy.py --page-only   # the browser tables only (parity and the page's prediction time)

- ONNX: every shipped model exported, run by onnxruntime on ``--images`` real test drawings of its kind
  (QuickDraw's held-back split or the MNIST test set), compared with ``model.predict``.
- Browser: the same models' static pages (``export.to_web``) opened from file:// in headless Chromium;
  ``window.nn.predict`` on the same images, and the time of each call, measured in the page.
- Preprocessing: ``--drawings`` generated stroke drawings (shapes and random scribbles) through the page's
  ``window.nn.preprocess`` and through ``data.images.preprocess_strokes``, in both styles, pixel by pixel.
- scikit-learn: ``cross_val_score`` of StandardScaler + NeuralNetworkClassifier on scikit-learn's digits,
  with scikit-learn's MLPClassifier (same defaults: one hidden layer of 100, Adam, 200 epochs) beside it.

Needs the test extra (onnx, onnxruntime, scikit-learn, playwright) and Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PRETRAINED = ROOT / "src" / "NeuralNetworks" / "pretrained"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def test_images(model, data_dir: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real drawings the model never trained on, of its kind, shaped as its input (float32 0..255), and labels."""
    from NeuralNetworks import data

    if model.preprocessing == "mnist":
        dataset = data.load("mnist", data_dir / "mnist", test_only=True)
    else:
        dataset = data.load("quickdraw", data_dir / "quickdraw", test_only=True)
    pick = np.random.default_rng(0).permutation(len(dataset.x_test))[:count]
    x = dataset.x_test[pick].astype(np.float32).reshape(len(pick), *model.input_shape)
    return x, dataset.y_test[pick]


def onnx_rows(shipped: dict, data_dir: Path, count: int, folder: Path) -> list[list[object]]:
    import onnxruntime

    from NeuralNetworks import export

    rows = []
    for name, model in shipped.items():
        x, _ = test_images(model, data_dir, count)
        export.to_onnx(model, folder / f"{name}.onnx")
        session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        start = time.perf_counter()
        theirs = session.run(None, {"input": x})[0]
        seconds = time.perf_counter() - start
        ours = model.predict(x)
        rows.append([name, len(x), f"{np.abs(theirs - ours).max():.1e}",
                     f"{(theirs.argmax(1) == ours.argmax(1)).mean():.1%}", f"{1000 * seconds / len(x):.3f}"])
    return rows


def drawings(count: int) -> list:
    sys.path.insert(0, str(ROOT / "tests" / "export"))
    from export_test_models import varied_drawings

    return varied_drawings(count)


def browser_rows(shipped: dict, data_dir: Path, count: int, drawing_count: int, folder: Path):
    from playwright.sync_api import sync_playwright

    from NeuralNetworks import export
    from NeuralNetworks.data import images

    parity, preprocessing = [], []
    strokes = drawings(drawing_count)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for name, model in shipped.items():
            x, labels = test_images(model, data_dir, count)
            page = browser.new_page()
            page.goto((export.to_web(model, folder / name, name=name) / "index.html").resolve().as_uri())
            page.wait_for_function("() => window.nn && window.nn.labels.length > 0")
            packed = base64.b64encode(x.astype(np.uint8).tobytes()).decode("ascii")
            outputs, times = page.evaluate("""(packed) => {
                const bytes = Uint8Array.from(atob(packed), (char) => char.charCodeAt(0));
                const outputs = [], times = [];
                for (let at = 0; at < bytes.length; at += 784) {
                    const start = performance.now();
                    outputs.push(Array.from(window.nn.predict(bytes.subarray(at, at + 784))));
                    times.push(performance.now() - start);
                }
                return [outputs, times]; }""", packed)
            ours, page_outputs = model.predict(x), np.array(outputs)
            style = json.loads((folder / name / "model.json").read_text())["preprocessing"]
            draw_ms = page.evaluate("""([strokes, style]) => strokes.map((drawing) => {
                const start = performance.now(); window.nn.preprocess(drawing, style);
                return performance.now() - start; })""", [strokes, style])
            parity.append([name, len(x), f"{np.abs(page_outputs - ours).max():.1e}",
                           f"{(page_outputs.argmax(1) == ours.argmax(1)).mean():.1%}",
                           f"{(page_outputs.argmax(1) == labels).mean():.1%}",
                           f"{statistics.median(times):.2f}", f"{np.percentile(times, 90):.2f}",
                           f"{statistics.median(draw_ms):.2f}"])
            if not preprocessing:
                for kind in ("quickdraw", "mnist"):
                    text = page.evaluate("""([strokes, style]) => strokes.map((drawing) =>
                        String.fromCharCode(...window.nn.preprocess(drawing, style))).join("")""", [strokes, kind])
                    js = np.frombuffer(text.encode("latin-1"), np.uint8).reshape(len(strokes), -1).astype(int)
                    python = np.array([images.preprocess_strokes(d, style=kind).ravel() for d in strokes], int)
                    difference = np.abs(js - python)
                    preprocessing.append([kind, len(strokes), difference.max(), f"{(difference > 1).mean():.4%}",
                                          f"{(difference > 0).mean():.4%}"])
            page.close()
        browser.close()
    return parity, preprocessing


def sklearn_rows(folds: int) -> list[list[object]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from NeuralNetworks.sklearn import NeuralNetworkClassifier

    x, y = load_digits(return_X_y=True)
    rows = []
    for name, estimator in (("NeuralNetworkClassifier(random_state=0)", NeuralNetworkClassifier(random_state=0)),
                            ("sklearn MLPClassifier(random_state=0)", MLPClassifier(random_state=0))):
        start = time.perf_counter()
        scores = cross_val_score(make_pipeline(StandardScaler(), estimator), x, y, cv=folds)
        rows.append([name, f"{scores.mean():.4f} +- {scores.std():.4f}", " ".join(f"{s:.3f}" for s in scores),
                     f"{time.perf_counter() - start:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="mnist/ and quickdraw/")
    parser.add_argument("--images", type=int, default=500, help="real test drawings per model")
    parser.add_argument("--drawings", type=int, default=500, help="generated stroke drawings")
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds on digits")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: all)")
    parser.add_argument("--page-only", action="store_true", help="only the headless Chromium tables")
    args = parser.parse_args(argv)

    from NeuralNetworks.nn import models

    shipped = {path.stem: models.load(path) for path in sorted(PRETRAINED.glob("*.npz"))}
    with tempfile.TemporaryDirectory() as temporary, threadpool_limits(limits=args.threads, user_api="blas"):
        folder = Path(temporary)
        if not args.page_only:
            print("## ONNX (onnxruntime, CPU) vs model.predict\n")
            print(table(["model", "images", "max abs diff", "same top label", "ms/image (batch)"],
                        onnx_rows(shipped, args.data, args.images, folder)))
        if CHROMIUM.exists():
            parity, preprocessing = browser_rows(shipped, args.data, args.images, args.drawings, folder)
            print("\n## Static page in headless Chromium (file://) vs model.predict\n")
            print(table(["model", "images", "max abs diff", "same top label", "accuracy", "predict ms (median)",
                         "predict ms (p90)", "preprocess ms (median)"], parity))
            print("\n## Stroke preprocessing: strokes.js vs data/images.py\n")
            print(table(["style", "drawings", "largest pixel diff", "pixels off by > 1", "pixels differing"],
                        preprocessing))
        else:
            print(f"\n{CHROMIUM} is absent: browser figures skipped")
        if not args.page_only:
            print(f"\n## scikit-learn: cross_val_score on digits (1,797 images, {args.cv} folds)\n")
            print(table(["estimator (after StandardScaler)", "accuracy", "folds", "seconds"], sklearn_rows(args.cv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
