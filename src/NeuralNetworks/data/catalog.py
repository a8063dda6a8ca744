"""The dataset catalog: one ``DatasetSpec`` per dataset, the single table ``data.load``, ``data.download``,
the command line and ``python -m NeuralNetworks.run`` read.

A spec says what a dataset is (its name and aliases, how drawings become its images), where its files live
by default and what reads and fetches them. Adding a dataset is one entry in ``CATALOG`` plus its loader:
see docs/datasets.md for a worked example. The options a dataset takes are its loader's keyword parameters,
so they cannot drift apart from what the loader accepts.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..budget import Budget
from .download import download_mnist, fetch_quickdraw
from .folder import load_folder
from .images import STYLES, Style
from .mnist import load_fashion_mnist, load_mnist
from .quickdraw import load_quickdraw
from .shapes import load_shapes
from .splits import Dataset
from .streaming import StreamedDataset, stream_quickdraw
from .table import load_table

DATASETS_FOLDER = Path("datasets")  # relative to the current directory: datasets/<name>
# ``open`` streams a dataset that can stream when its images would take more memory than this. The rule reads
# only the files' headers, so two commands with the same arguments choose alike (and see the same test split).
STREAM_ABOVE_BYTES = 512 * 2**20
CATALOG_OPTIONS_NOT_PASSED = ("name", "budget")  # loader parameters the catalog owns or passes itself
BUDGET_OPTION = "budget"  # loaders that read files take the resource budget (NeuralNetworks.budget)
REQUIRED_LOADER_OPTION = "test_only"  # every loader can skip its training split (the test command relies on it)
FROM_LOADER = "loader"  # a spec's preprocessing when the loader decides it from the data (your own folder or table)

Loader = Callable[..., Dataset]
Downloader = Callable[..., list[Path]]
Streamer = Callable[..., StreamedDataset]


def _keyword_parameters(function: Callable[..., Any], skip_first: bool) -> tuple[str, ...]:
    parameters = list(inspect.signature(function).parameters.values())
    return tuple(parameter.name for parameter in parameters[1 if skip_first else 0:]
                 if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
                 and parameter.name not in CATALOG_OPTIONS_NOT_PASSED)


def _check_options(what: str, given: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"{what} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(accepted)}")


@dataclass(frozen=True)
class DatasetSpec:
    """What the package knows about one dataset.

    - ``name``: the canonical name ("fashion-mnist"); ``aliases`` are other names for it ("fashion").
    - ``loader``: returns the ``Dataset``; called ``loader(folder, **options)``, or ``loader(**options)`` for a
      ``generated`` dataset, which reads no files. It must accept ``test_only``.
    - ``preprocessing``: how a drawing becomes one of this dataset's images (a ``data.images`` style); required,
      so a new entry cannot silently inherit another dataset's style. ``load`` stamps it on the ``Dataset``, and
      ``NeuralNetworks train`` saves it with the model for the app and ``NeuralNetworks predict``.
    - ``files``: what the folder must hold, in words (for error messages and the docs).
    - ``alias_folder``: where the aliases read by default, and the name they give the ``Dataset`` (QuickDraw's
      "doodle" reads datasets/doodle, as the original scripts did); None: the spec's own folder and name.
    - ``size_option``: the loader option that caps the images per class (the command line's --max-per-class).
    - ``downloader``: fetches the files, called ``downloader(folder, **options)``; None if not downloadable.
    - ``streamer``: reads the folder without loading it, called ``streamer(folder, **options)``, returning a
      ``streaming.StreamedDataset`` (splits read batch by batch); None if the dataset only loads into memory.
    """

    name: str
    loader: Loader
    preprocessing: Style
    files: str
    aliases: tuple[str, ...] = ()
    generated: bool = False
    alias_folder: str | None = None
    size_option: str | None = None
    downloader: Downloader | None = None
    streamer: Streamer | None = None

    def __post_init__(self) -> None:
        if self.preprocessing not in (*STYLES, FROM_LOADER):
            raise ValueError(f"DatasetSpec {self.name!r}: `preprocessing` must be one of {', '.join(STYLES)} "
                             f"or {FROM_LOADER!r}. "
                             f"Received: {self.preprocessing!r}")
        if REQUIRED_LOADER_OPTION not in self.options:
            raise ValueError(f"DatasetSpec {self.name!r}: the loader must accept `{REQUIRED_LOADER_OPTION}`; "
                             f"it takes: {', '.join(self.options)}")
        if self.size_option is not None and self.size_option not in self.options:
            raise ValueError(f"DatasetSpec {self.name!r}: size_option {self.size_option!r} is not a loader option; "
                             f"it takes: {', '.join(self.options)}")

    @property
    def options(self) -> tuple[str, ...]:
        """The options ``load`` passes on to the loader: its keyword parameters after the folder."""
        return _keyword_parameters(self.loader, skip_first=not self.generated)

    @property
    def seeded(self) -> bool:
        """Whether a ``seed`` applies: the package generates or splits this dataset itself."""
        return "seed" in self.options

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def folder(self, alias: str | None = None) -> Path | None:
        """Where the files are looked for by default: ``datasets/<name>`` (None for a generated dataset)."""
        if self.generated:
            return None
        return DATASETS_FOLDER / self._name_for(alias)

    def load(self, data_dir: str | os.PathLike | None = None, *, alias: str | None = None,
             budget: Budget | None = None, **options: Any) -> Dataset:
        """Load it from ``data_dir`` (default: ``folder(alias)``); ``options`` go to the loader, and so does
        ``budget`` (what its files may claim, ``NeuralNetworks.budget``) if the loader takes one."""
        source = next(iter(inspect.signature(self.loader).parameters)) if not self.generated else None
        if source is not None and source in options and data_dir is None:  # data.load("csv", path=...)
            data_dir = options.pop(source)
        _check_options(f"The {self.name} dataset", options, self.options)
        if budget is not None and BUDGET_OPTION in inspect.signature(self.loader).parameters:
            options[BUDGET_OPTION] = budget
        if self.generated:
            if data_dir is not None:
                raise ValueError(f"The {self.name} dataset is generated, it reads no files. "
                                 f"Received: data_dir={data_dir!r}")
            dataset = self.loader(**options)
        else:
            dataset = self.loader(self.folder(alias) if data_dir is None else Path(data_dir), **options)
        preprocessing = dataset.preprocessing if self.preprocessing == FROM_LOADER else self.preprocessing
        return dataclasses.replace(dataset, name=self._name_for(alias), preprocessing=preprocessing)

    def stream(self, data_dir: str | os.PathLike | None = None, *, alias: str | None = None,
               **options: Any) -> StreamedDataset:
        """Open it from ``data_dir`` (default: ``folder(alias)``) for streaming; ``options`` go to the streamer."""
        if self.streamer is None:
            streamed = ", ".join(spec.name for spec in CATALOG.values() if spec.streamer)
            raise ValueError(f"The {self.name} dataset cannot be streamed from disk; only {streamed} can")
        _check_options(f"Streaming {self.name}", options, _keyword_parameters(self.streamer, skip_first=True))
        folder = self.folder(alias) if data_dir is None else Path(data_dir)
        dataset = self.streamer(folder, **options)
        return dataclasses.replace(dataset, name=self._name_for(alias), preprocessing=self.preprocessing)

    def open(self, data_dir: str | os.PathLike | None = None, *, alias: str | None = None,
             stream: bool | None = None, test_only: bool = False, **options: Any) -> Dataset | StreamedDataset:
        """``stream`` it (True), ``load`` it (False), or choose (None): stream when it can and its images would
        take more than ``STREAM_ABOVE_BYTES`` in memory, else load (gathering from arrays costs nothing)."""
        if stream and self.streamer is None:
            self.stream()  # raises, naming the datasets that stream
        if self.streamer is not None and stream is not False:
            streamed = self.stream(data_dir, alias=alias, **options)
            if stream or streamed.nbytes > STREAM_ABOVE_BYTES:
                return streamed
        return self.load(data_dir, alias=alias, test_only=test_only, **options)

    def download(self, data_dir: str | os.PathLike | None = None, *, alias: str | None = None,
                 **options: Any) -> list[Path]:
        """Fetch its files into ``data_dir`` (default: where ``load`` looks); ``options`` go to the downloader."""
        if self.generated:
            raise ValueError(f"The {self.name} dataset is generated by the package: there is nothing to download")
        folder = self.folder(alias) if data_dir is None else Path(data_dir)
        if self.downloader is None:
            raise ValueError(f"Downloading {self.name} is not supported; put {self.files} in {folder}")
        _check_options(f"Downloading {self.name}", options, _keyword_parameters(self.downloader, skip_first=True))
        return self.downloader(folder, **options)

    def _name_for(self, alias: str | None) -> str:
        if alias is not None and self.alias_folder and normalized(alias) in self.aliases:
            return self.alias_folder
        return self.name


def _indexed(*specs: DatasetSpec) -> Mapping[str, DatasetSpec]:
    """The catalog as a read-only name -> spec mapping, refusing a name or alias used twice or misspelt."""
    owner: dict[str, str] = {}
    for spec in specs:
        for name in spec.names:
            if name != normalized(name):
                raise ValueError(f"DatasetSpec {spec.name!r}: write {name!r} as {normalized(name)!r}")
            if name in owner:
                raise ValueError(f"DatasetSpec {spec.name!r}: the name {name!r} is taken by {owner[name]!r}")
            owner[name] = spec.name
    return MappingProxyType({spec.name: spec for spec in specs})


def normalized(name: str) -> str:
    """A dataset name as the catalog spells it: "Fashion_MNIST" -> "fashion-mnist"."""
    if not isinstance(name, str):
        raise TypeError(f"A dataset name must be a string. Received: {name!r}")
    return name.strip().lower().replace("_", "-")


CATALOG: Mapping[str, DatasetSpec] = _indexed(
    DatasetSpec(
        name="shapes", loader=load_shapes, preprocessing="quickdraw", generated=True,
        files="nothing: generated by the package, deterministic for a seed",
        size_option="samples_per_class",
    ),
    DatasetSpec(
        name="mnist", loader=load_mnist, preprocessing="mnist",
        files="Keras' mnist.npz or the four IDX files (train-images-idx3-ubyte[.gz], ...)",
        downloader=download_mnist,
    ),
    DatasetSpec(
        name="fashion-mnist", loader=load_fashion_mnist, preprocessing="mnist", aliases=("fashion",),
        files="its four IDX files (train-images-idx3-ubyte[.gz], ...)",
    ),
    DatasetSpec(
        name="quickdraw", loader=load_quickdraw, preprocessing="quickdraw", aliases=("doodle", "doodles"),
        alias_folder="doodle", files="Google's numpy_bitmap files, one <class>.npy (N, 784) per class",
        size_option="max_per_class", downloader=fetch_quickdraw, streamer=stream_quickdraw,
    ),
    DatasetSpec(
        name="folder", loader=load_folder, preprocessing=FROM_LOADER, aliases=("images",),
        files="one subfolder of images per class (PNG, JPEG, BMP, GIF, WebP), e.g. cat/*.png and dog/*.jpg",
    ),
    DatasetSpec(
        name="csv", loader=load_table, preprocessing=FROM_LOADER, aliases=("table",),
        files="a CSV file with a header row; pass target= the column to predict",
    ),
)


def find(name: str) -> DatasetSpec:
    """The spec a name or alias stands for ("Fashion_MNIST" and "fashion" -> the fashion-mnist spec)."""
    key = normalized(name)
    for spec in CATALOG.values():
        if key in spec.names:
            return spec
    aliases = ", ".join(alias for spec in CATALOG.values() for alias in spec.aliases)
    raise ValueError(f"Unknown dataset {name!r}. Expected one of: {', '.join(CATALOG)} (aliases: {aliases})")


def download(name: str, data_dir: str | os.PathLike | None = None, **options: Any) -> list[Path]:
    """Download a dataset by name into ``data_dir`` (default: where ``data.load`` looks for it).

    ``options`` go to the dataset's downloader: "mnist" takes ``source`` ("idx" or "npz"), "quickdraw" /
    "doodle" need ``classes``; both take ``mirrors`` (replacing the default base URLs) and ``progress``.
    (Here rather than in ``download``, which the catalog imports for its downloaders: no import cycle.)
    """
    return find(name).download(data_dir, alias=name, **options)


def all_names() -> Iterator[str]:
    """Every name and alias in the catalog, each spec's name first: what a command line can offer."""
    return (name for spec in CATALOG.values() for name in spec.names)

