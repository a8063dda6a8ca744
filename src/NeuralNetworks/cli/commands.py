"""The subcommands and ``main``: each command calls the library and prints; ``main`` turns every expected
failure into one line ``error: ...`` on stderr and exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data import Dataset, StreamedDataset, catalog, require_classes
from ..data.table import TableDataset
from . import owndata, recipe, tables
from .checks import check_numbers, check_outputs, output_file, output_folder
from .parser import EXIT_USAGE, CommandError, build_parser, capped_datasets

if TYPE_CHECKING:
    from ..nn.models import Model

EXIT_OK = 0
EXIT_INTERRUPTED = 130
SAMPLE_GRID_SIZE = 32
CLASS_COLUMN = "class"


# -- commands --------------------------------------------------------------------------------------------
def _load_dataset(args: argparse.Namespace, test_only: bool = False,
                  model: Model | None = None) -> Dataset | StreamedDataset | TableDataset:
    """The dataset the arguments name: loaded into memory, or streamed (see ``DatasetSpec.open``); your own
    folder or table read as ``model`` (for ``test``) needs it."""
    name = owndata.dataset_name(args)
    if name == owndata.TABLE:
        return owndata.table_data(args, test_only, model)
    spec = catalog.find(name)
    options: dict = owndata.loader_options(args, name, test_only, model)
    if spec.seeded:
        options["seed"] = args.seed
    if args.classes:
        options["classes"] = args.classes
    if args.max_per_class is not None:
        if spec.size_option is None:
            raise CommandError(f"--max-per-class does not apply to {spec.name}, which comes as a whole; "
                               f"it applies to: {capped_datasets()}")
        options[spec.size_option] = args.max_per_class
    dataset = spec.open(args.data_dir, alias=name, stream=args.stream, test_only=test_only, **options)
    test = len(_test_data(dataset)[0])
    train = 0 if test_only else len(dataset.train if isinstance(dataset, StreamedDataset) else dataset.x_train)
    if not test_only:  # before anything is printed or built: one class, or a class with nothing to train on
        counts = dataset.train.counts if isinstance(dataset, StreamedDataset) else dataset.class_counts("train")
        require_classes(dataset.name if args.data_dir is None else f"{dataset.name} in {args.data_dir}",
                        dataset.class_names, counts)
    if not test or not (test_only or train):
        raise CommandError(f"{dataset.name}: {train} training and {test} test images, too few to "
                           f"{'test' if test_only else 'train'} (more per class, e.g. --max-per-class)")
    return dataset


def _build_model(arch: str, input_shape: tuple[int, ...], num_classes: int, seed: int):
    from ..nn import presets

    return presets.ARCHITECTURES[arch](input_shape, num_classes, seed=seed)


def class_table(names: list[str], precision: np.ndarray, recall: np.ndarray, support: np.ndarray) -> str:
    """Per-class precision, recall and support, one row per class, columns aligned under their headers."""
    width = max(len(CLASS_COLUMN), *map(len, names)) + 2
    rows = [f"{CLASS_COLUMN.ljust(width)}precision  recall  support"]
    rows += [f"{name.ljust(width)}{p:9.4f}  {r:6.4f}  {count:7d}"
             for name, p, r, count in zip(names, precision, recall, support, strict=True)]
    return "\n".join(rows)


def _model_to_train(args: argparse.Namespace, dataset: Dataset | StreamedDataset) -> Model:
    """A new compiled model for the dataset, or the one ``--resume`` names (which must fit the dataset)."""
    from ..nn import losses, optimizers

    if isinstance(dataset, TableDataset) and args.resume is None:
        optimizer = optimizers.get(args.optimizer, learning_rate=recipe.learning_rate(args))
        model = tables.build_and_compile(dataset, args.seed, optimizer)
    elif args.resume is None:
        arch = args.arch or ("cnn" if owndata.dataset_name(args) == owndata.FOLDER else "mlp")
        model = _build_model(arch, dataset.input_shape, dataset.num_classes, args.seed)
    else:
        model = _load_model(args.resume)
        if tuple(model.input_shape) != tuple(dataset.input_shape) or (model.labels or {}) != dataset.label_dict:
            raise CommandError(f"{args.resume}: the model was trained on other classes or image sizes than "
                               f"{dataset.name} with these --classes")
        owndata.check_split_rule(argparse.Namespace(**{**vars(args), "model": args.resume}), model, dataset)
    if model.optimizer is None:
        optimizer = optimizers.get(args.optimizer, learning_rate=recipe.learning_rate(args))
        model.compile(optimizer=optimizer, loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.labels, model.preprocessing = dataset.label_dict or None, dataset.preprocessing  # saved with checkpoints
    model.training_split = owndata.split_rule(args, dataset)
    return model


def _test_data(dataset: Dataset | StreamedDataset | TableDataset) -> tuple:
    return (dataset.test,) if isinstance(dataset, StreamedDataset) else (dataset.x_test, dataset.y_test)


def command_train(args: argparse.Namespace) -> int:
    from .. import plots
    from ..nn import callbacks, parallel
    from ..nn.saving import resolve_path

    recipe.check_schedule_flags(args)
    name = owndata.dataset_name(args)
    arch = "mlp" if name == owndata.TABLE else args.arch or ("cnn" if name == owndata.FOLDER else "mlp")
    out = args.out or Path(f"{name}-{arch}.npz")
    target = output_file("--out", resolve_path(out, for_writing=True))
    plot = output_file("--plot", args.plot or target.with_name(f"{target.stem}-history.png"))
    checkpoint = args.checkpoint and output_file("--checkpoint", resolve_path(args.checkpoint, for_writing=True))
    dataset = _load_dataset(args)
    test = _test_data(dataset)
    streamed, table = isinstance(dataset, StreamedDataset), isinstance(dataset, TableDataset)
    kind = "regression" if table and dataset.task == "regression" else f"{dataset.num_classes} classes"
    print(f"{dataset.name}: {len(dataset.train if streamed else dataset.x_train)} training and {len(test[0])} test "
          f"{'rows' if table else 'images'}{' (streamed from disk)' if streamed else ''}, {kind}"
          f"{f' ({_class_list(dataset)})' if dataset.num_classes else ''}")
    for note in getattr(dataset, "notes", ()):
        print(f"note: {note}")
    model = _model_to_train(args, dataset)
    model.summary()
    schedule, stopper = recipe.callbacks_for(args.schedule, max(dataset.num_classes, 2), args.patience)
    extra = [callbacks.ModelCheckpoint(checkpoint)] if checkpoint else []
    extra += [callbacks.CSVLogger(output_file("--csv-log", args.csv_log))] if args.csv_log else []
    weights = {"class_weight": args.class_weight} if args.class_weight else {}
    saving = {"labels": dataset.label_dict or None, "preprocessing": dataset.preprocessing,
              "include_optimizer": not args.no_optimizer_state}
    threads = contextlib.nullcontext()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threads = threadpool_limits(limits=args.threads, user_api="blas")
    try:
        with threads:
            # data-parallel when started by mpiexec or srun with several processes
            model.fit(**recipe.training_data(dataset, args.validation_split), epochs=args.epochs,
                      batch_size=args.batch, callbacks=[*schedule, *extra], verbose=2 if args.quiet else 1, **weights)
    except KeyboardInterrupt:  # one process, or every process of a job stopped at the same step (JobInterrupted)
        if parallel.is_root_process():
            path = model.save(out, **saving)
            print(f"\ninterrupted: saved the best weights so far to {path}", file=sys.stderr)
        parallel.end_job("interrupted", EXIT_INTERRUPTED, together=True)  # after rank 0's save
        return EXIT_INTERRUPTED
    root = parallel.is_root_process()
    path = model.save(out, **saving) if root else out
    if stopper is not None and stopper.stopped_epoch is not None:
        print(f"stopped after epoch {stopper.stopped_epoch + 1} of {args.epochs}: val_loss improved by less "
              f"than {stopper.min_delta:.2g} for {args.patience} epoch(s)")
    if stopper is not None and stopper.best_epoch is not None:
        print(f"best epoch: {stopper.best_epoch + 1} (val_loss {stopper.best:.4f}); its weights were kept")
    if table:
        print(tables.test_line(model, dataset))
    else:
        logs = parallel.trainer_for(model).evaluate(*test)  # each process computes its part
        print(f"test accuracy: {logs['accuracy']:.4f} (loss {logs['loss']:.4f}) on {len(test[0])} images")
    print(f"saved model to {path}")
    if root:
        print(f"saved training curves to {plots.training_curves(model.history.history, plot)}")
    return EXIT_OK


def _class_list(dataset: Dataset | StreamedDataset, shown: int = 20) -> str:
    names = dataset.class_names
    return ", ".join(names) if len(names) <= shown else f"{', '.join(names[:shown])}, ... ({len(names) - shown} more)"


def _load_model(path: Path):
    from ..nn import models

    return models.load(owndata.model_path(path))


def command_test(args: argparse.Namespace) -> int:
    from .. import plots
    from ..nn import metrics

    stem = args.model.with_suffix("")
    confusion_path = output_file("--confusion", args.confusion or Path(f"{stem}-confusion.png"))
    samples_path = output_file("--samples", args.samples or Path(f"{stem}-samples.png"))
    model = _load_model(args.model)
    dataset = _load_dataset(args, test_only=True, model=model)
    owndata.check_split_rule(args, model, dataset)
    if isinstance(dataset, TableDataset):
        print(tables.test_line(model, dataset))
        return EXIT_OK
    if isinstance(dataset, Dataset) and dataset.name == owndata.FOLDER and model.labels:
        dataset = owndata.remap_to_model(dataset, [model.labels[i] for i in sorted(model.labels)],
                                         str(args.data_dir))
    if tuple(dataset.input_shape) != tuple(model.input_shape):
        raise CommandError(f"{args.model}: the model expects images of shape {model.input_shape}, "
                           f"the {dataset.name} images are {dataset.input_shape}")
    names = dataset.class_names
    model_names = [model.labels[i] for i in sorted(model.labels)] if model.labels else names
    if model_names != names:
        raise CommandError(f"{args.model}: the model's labels ({', '.join(model_names)}) differ from the "
                           f"dataset's ({', '.join(names)}); pass the same --classes used for training")
    test = _test_data(dataset)
    shown = min(SAMPLE_GRID_SIZE, len(test[0]))
    sample = np.sort(np.random.default_rng(args.seed).choice(len(test[0]), shown, replace=False))
    if isinstance(dataset, StreamedDataset):
        matrix = metrics.confusion_matrix_by_batches(model.predict, dataset.test, len(names))
        images, truth = dataset.test.gather(sample)
    else:
        matrix = metrics.confusion_matrix(dataset.y_test, model.predict(dataset.x_test), num_classes=len(names))
        images, truth = dataset.x_test[sample], dataset.y_test[sample]
    predicted = model.predict(images).argmax(axis=1)
    precision, recall = metrics.precision_recall(matrix)
    accuracy = np.trace(matrix) / matrix.sum()
    print(f"test accuracy: {accuracy:.4f} on {matrix.sum()} {dataset.name} images")
    print(class_table(names, precision, recall, matrix.sum(axis=1)))
    confusion = plots.confusion_matrix(matrix, names, confusion_path)
    samples = plots.sample_predictions(images, [names[i] for i in truth], [names[i] for i in predicted],
                                       samples_path)
    print(f"saved confusion matrix to {confusion} and sample predictions to {samples}")
    return EXIT_OK


def command_predict(args: argparse.Namespace) -> int:
    from .. import serving

    model_path = owndata.model_path(args.model)
    if len(args.images) == 1 and args.images[0].suffix.lower() == ".csv":
        print(tables.predict_table(_load_model(model_path), args.images[0], args.json))
        return EXIT_OK
    served = serving.load_model(model_path, name=args.model.stem)
    print(owndata.predict_images(served, args.images, args.json))
    return EXIT_OK


def command_info(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    model.summary()
    print(f"Optimizer: {model.optimizer!r}; loss: {model.loss!r}" if model.loss else "Not compiled")
    print(f"Preprocessing: {owndata.describe_preprocessing(model.preprocessing)}")
    history = model.history.history if model.history is not None else {}
    print(owndata.history_table(history) if history else "Training history: none recorded")
    return EXIT_OK


def command_inspect(args: argparse.Namespace) -> int:
    from ..data import one_hot
    from ..nn import inspection

    model = _load_model(args.model)
    dataset = _load_dataset(args, test_only=True, model=model)
    owndata.check_split_rule(args, model, dataset)
    if isinstance(dataset, StreamedDataset):
        images, labels = dataset.test.gather(np.arange(min(args.batch, len(dataset.test))))
    else:
        images, labels = dataset.x_test[:args.batch], dataset.y_test[:args.batch]
    if model.loss is not None and not model.loss.sparse_labels:
        labels = one_hot(labels, dataset.num_classes)
    traces = model.inspect(images, labels if model.loss is not None else None)
    print(inspection.format_inspection(traces))
    if args.plot:
        print(f"saved plot to {inspection.plot_inspection(traces, args.plot)}")
    return EXIT_OK


def command_download(args: argparse.Namespace) -> int:
    options = {"classes": args.classes} if args.classes else {}
    for path in catalog.download(args.dataset, args.data_dir, **options):
        print(f"ok: {path}")
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    from .. import export

    if args.format == "onnx":
        output_file("--out", args.out)
    else:
        output_folder("--out", args.out)
    model = _load_model(args.model)
    try:
        if args.format == "onnx":
            export.to_onnx(model, args.out)
        else:
            export.to_web(model, args.out, name=args.model.stem)
    except ImportError as error:
        raise CommandError(str(error)) from None
    written = args.out / "index.html" if args.format == "web" else args.out
    print(f"exported {args.model} ({args.format}): {written}")
    return EXIT_OK


def command_app(args: argparse.Namespace) -> int:
    from ..app import server

    server.run(host=args.host, port=args.port, extra_models=args.model)
    return EXIT_OK


COMMANDS = {"train": command_train, "test": command_test, "predict": command_predict, "info": command_info,
            "inspect": command_inspect, "download": command_download, "export": command_export,
            "app": command_app}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    from ..data.errors import DataError
    from ..nn import parallel
    from ..nn.saving import ModelFileError

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv) or ["app"])
    # In a data-parallel job every process runs this; only rank 0 prints, and a process that fails ends the job.
    output = contextlib.nullcontext() if parallel.is_root_process() else contextlib.redirect_stdout(io.StringIO())
    try:
        check_numbers(args)
        check_outputs(args)
        with output:
            return COMMANDS[args.command](args)
    except (CommandError, DataError, ModelFileError, ValueError, TypeError, OSError, ArithmeticError,
            RuntimeError) as error:  # ArithmeticError: a loss that diverged (FloatingPointError)
        parallel.end_job(f"error: process {parallel.launched_rank()}: {error}", EXIT_USAGE)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: out of memory (lower --batch or --max-per-class)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        parallel.end_job(f"interrupted on process {parallel.launched_rank()}", EXIT_INTERRUPTED)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # unexpected: in a data-parallel job, end it rather than leave the others waiting
        parallel.end_job(f"{traceback.format_exc()}error: process {parallel.launched_rank()} failed: {error!r}", 1)
        raise
