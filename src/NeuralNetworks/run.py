"""``python -m NeuralNetworks.run``: the classic entry point, kept working on top of the command line.

Classic flags (``--mode train --datasets mnist --epochs 10 --lr 0.01 --batch 16 --model_dir FILE``) are
translated to the new commands; new-style arguments (``train --dataset shapes``) pass straight through, and no
argument at all starts the web app.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .cli import main
from .data import DEFAULT_DATASET, catalog

CLASSIC_OPTIMIZER = "adagrad"  # what the classic scripts trained with, so their --lr values keep their meaning


def translate(argv: Sequence[str]) -> list[str]:
    """Turn classic ``--mode ...`` flags into the equivalent new-style arguments."""
    if not any(arg.startswith("--mode") for arg in argv):
        return list(argv)
    parser = argparse.ArgumentParser(prog="python -m NeuralNetworks.run")
    parser.add_argument("--mode", choices=("train", "test", "predict", "app"), required=True)
    parser.add_argument("--datasets", "--dataset", choices=list(catalog.all_names()), default=DEFAULT_DATASET)
    parser.add_argument("--data_dir", "--data-dir")
    parser.add_argument("--epochs")
    parser.add_argument("--lr")
    parser.add_argument("--batch")
    parser.add_argument("--model_dir", "--model")
    parser.add_argument("images", nargs="*")
    args = parser.parse_args(argv)
    spec = catalog.find(args.datasets)
    default_dir = spec.folder(alias=args.datasets)  # "doodle" keeps the classic datasets/doodle
    if args.mode == "app":
        return ["app", *(["--model", args.model_dir] if args.model_dir else [])]
    if args.mode == "predict":
        return ["predict", "--model", args.model_dir or "model.npz", *args.images]
    new = [args.mode, "--dataset", spec.name]
    if args.data_dir or default_dir:
        new += ["--data-dir", args.data_dir or str(default_dir)]
    if args.mode == "train":
        new += ["--optimizer", CLASSIC_OPTIMIZER]
        for flag, value in (("--epochs", args.epochs), ("--lr", args.lr), ("--batch", args.batch),
                            ("--out", args.model_dir)):
            if value is not None:
                new += [flag, value]
    else:
        new += ["--model", args.model_dir or "model.npz"]
    return new


def run(argv: Sequence[str] | None = None) -> int:
    """Run the classic or new-style command line and return its exit status."""
    return main(translate(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(run())
