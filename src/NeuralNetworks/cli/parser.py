"""The command line's arguments: one subcommand each, checked by argparse for their types and choices."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from ..data import DEFAULT_DATASET, catalog
from . import recipe

EXIT_USAGE = 2
OPTIMIZERS = tuple(recipe.DEFAULT_LEARNING_RATE)
# nn.presets.ARCHITECTURES, named here to keep startup light
ARCHITECTURES = ("mlp", "cnn", "digits", "doodles", "residual")
SHIPPED = ("digits", "doodles")  # --model names for the shipped models (app.registry.SHIPPED_MODELS)


DESCRIPTION = "The command line: NeuralNetworks train | test | predict | info | inspect | download | export | app."


class CommandError(Exception):
    """An expected failure the command line reports in one line."""


def output_path(text: str) -> Path:
    """An ``--out`` value: any path but the empty one (which ``Path`` would read as the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file or folder name, got an empty one")
    return Path(text)


def capped_datasets() -> str:
    return ", ".join(spec.name for spec in catalog.CATALOG.values() if spec.size_option)


def _streamed_datasets() -> str:
    return ", ".join(spec.name for spec in catalog.CATALOG.values() if spec.streamer)


def _add_dataset_arguments(parser: argparse.ArgumentParser, training: bool = False) -> None:
    parser.add_argument("--dataset", choices=list(catalog.all_names()),
                        help=f"which dataset (default: folder with --data-dir, else {DEFAULT_DATASET}, generated "
                             "offline)")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the dataset files (default: datasets/<name>); alone, a folder of your "
                             "images with one subfolder per class")
    parser.add_argument("--data", type=Path, help="a CSV table (with --target COLUMN for train)")
    parser.add_argument("--cache-dir", type=Path,
                        help="where a large image folder's decoded pixels are memory-mapped (default: the system's "
                             "temporary folder; removed when the command ends)")
    if training:
        parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                            help="image folder: resize every image to this (default: the most common size, its "
                                 "longer side at most 64)")
        parser.add_argument("--color", choices=("grayscale", "rgb"),
                            help="image folder: default rgb when any image has colour, else grayscale")
        parser.add_argument("--ink-on-paper", action=argparse.BooleanOptionalAction,
                            help="image folder: invert dark drawings on light paper to white ink on black (default: "
                                 "when 3/4 of the training images have a plain light border)")
        parser.add_argument("--target", help="CSV table: the column to predict")
        parser.add_argument("--task", choices=("classification", "regression"),
                            help="CSV table: default classification for a text or integer target, else regression")
        parser.add_argument("--dropna", action="store_true",
                            help="CSV table: drop rows with a missing value instead of filling them in")
    parser.add_argument("--classes", nargs="+",
                        help="classes to use: names, `all`, or a file with one class per line (default: all)")
    parser.add_argument("--max-per-class", type=int,
                        help=f"at most this many images per class ({capped_datasets()})")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits, initial weights and shuffling")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction,
                        help=f"read batches from the files instead of loading them (default: when "
                             f"they exceed {catalog.STREAM_ABOVE_BYTES // 2**20} MiB; {_streamed_datasets()})")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line ``error: ...`` (exit 2) like every other failure, not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="NeuralNetworks", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train a network and save it with its labels")
    _add_dataset_arguments(train, training=True)
    train.add_argument("--arch", choices=ARCHITECTURES,
                       help="network: MLP, small CNN, the augmented CNN of the shipped digits or doodles model, or "
                            "a small ResNet-style network (residual); default: cnn for an image folder, mlp otherwise")
    train.add_argument("--class-weight", choices=("balanced",),
                       help="balanced: weigh each class's samples by n / (classes x its count) in the loss")
    train.add_argument("--csv-log", type=Path, help="CSV file with one row of losses and metrics per epoch")
    train.add_argument("--epochs", type=int, default=20, help="most epochs (early stopping may end sooner)")
    train.add_argument("--batch", type=int, default=64, help="batch size")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    train.add_argument("--lr", type=float, help="learning rate (default depends on the optimizer)")
    train.add_argument("--schedule", choices=recipe.SCHEDULES, default="plateau",
                       help="plateau: cut the learning rate 5x whenever val_loss stalls, stop early, keep the best "
                            "epoch; cosine: decay it to 0 along a cosine over all --epochs, keep the last")
    train.add_argument("--validation-split", type=float, default=recipe.DEFAULT_VALIDATION_SPLIT,
                       help="share of the training set held out to watch val_loss, when the dataset has no "
                            "validation split (0: train on all of it; needs --schedule cosine)")
    train.add_argument("--patience", type=int, default=3,
                       help="epochs without val_loss improvement to stop (with --schedule plateau)")
    train.add_argument("--out", type=output_path, help="model file to write (default: <dataset>-<arch>.npz)")
    train.add_argument("--no-optimizer-state", action="store_true",
                       help="save without the optimizer's moments: a third of the size, all the app needs, but "
                            "training cannot resume exactly from the file")
    train.add_argument("--plot", type=Path, help="PNG of the loss and accuracy curves")
    train.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    train.add_argument("--threads", type=int,
                       help="threads (default: every core, for BLAS and, in a big network, each batch split "
                            "over them; 1 is fastest when other programs keep the cores busy)")
    train.add_argument("--checkpoint", type=Path, help="model file written after every epoch (to resume from)")
    train.add_argument("--resume", type=Path,
                       help="continue training a saved model or checkpoint (its optimizer and state; --arch, "
                            "--optimizer and --lr are then ignored)")

    test = commands.add_parser("test", help="accuracy, per-class precision/recall, confusion matrix, samples")
    test.add_argument("--model", type=Path, required=True, help=f"model file, or {' or '.join(SHIPPED)}")
    _add_dataset_arguments(test)
    test.add_argument("--whole", action="store_true",
                      help="image folder or CSV: score every sample (data never trained on), not the held-back split")
    test.add_argument("--confusion", type=Path, help="confusion-matrix PNG (default: <model>-confusion.png)")
    test.add_argument("--samples", type=Path, help="sample-predictions PNG (default: <model>-samples.png)")

    predict = commands.add_parser("predict", help="label and top-3 scores for image files, or a CSV table's rows")
    predict.add_argument("--model", type=Path, required=True, help=f"model file, or {' or '.join(SHIPPED)}")
    predict.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, ...), or one CSV table")
    predict.add_argument("--json", action="store_true",
                         help="a JSON list, one object per input: file (or row), label and every label's score")

    info = commands.add_parser("info", help="a model's summary, labels, preprocessing and training history")
    info.add_argument("model", type=Path, help=f"model file, or {' or '.join(SHIPPED)}")

    inspect = commands.add_parser("inspect", help="activations and gradients of one batch, per layer")
    inspect.add_argument("--model", type=Path, required=True, help="model file")
    _add_dataset_arguments(inspect)
    inspect.add_argument("--batch", type=int, default=64, help="samples in the inspected batch")
    inspect.add_argument("--plot", type=Path, help="PNG of activation and gradient histograms")

    download = commands.add_parser("download", help="fetch MNIST or QuickDraw classes (checksummed, resumable)")
    download.add_argument("dataset", help="what to download",
                          choices=[name for spec in catalog.CATALOG.values() if spec.downloader for name in spec.names])
    download.add_argument("--data-dir", type=Path, help="destination folder (default: where train looks)")
    download.add_argument("--classes", nargs="+", help="QuickDraw classes to download")

    export = commands.add_parser("export", help="write a model as ONNX or as a static page predicting in the browser")
    export.add_argument("--model", type=Path, required=True, help="model file")
    export.add_argument("--format", choices=("onnx", "web"), required=True,
                        help="onnx: one .onnx file; web: a folder with the drawing page (works from file://)")
    export.add_argument("--out", type=output_path, required=True, help="the .onnx file or the page's folder to write")

    app = commands.add_parser("app", help="serve the doodle web app (the default command)")
    app.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    app.add_argument("--port", type=int, default=5000)
    app.add_argument("--model", type=Path, action="append", default=[], help="extra model file to offer")
    return parser
