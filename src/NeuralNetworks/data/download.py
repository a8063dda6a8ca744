"""Download MNIST and Quick, Draw! classes with resume, fallback mirrors and verification, using only urllib.

Each file goes to ``<name>.part`` first; an interrupted transfer resumes with an HTTP ``Range`` request (a
server that ignores it simply sends the whole file again), mirrors are tried in order, the result is checked
(SHA-256 where known, the .npy header for QuickDraw, which publishes no checksums) and only then renamed into
place, so a half-downloaded or corrupt file never sits under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .._validation import path_inside, safe_name
from .errors import DataError, DownloadError
from .mnist import NPZ_NAME, SPLIT_FILES
from .quickdraw import FILE_SUFFIX, open_bitmaps

KERAS_MNIST_URLS = ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",)
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_IDX_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",  # the original site, last: it often refuses scripted downloads
)
# SHA-256 of the *decompressed* IDX files (the published ones): a mirror that re-gzips the data still passes.
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/"

CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 30.0
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
USER_AGENT = "NeuralNetworks-downloader"
PART_SUFFIX = ".part"

Verifier = Callable[[Path], None]
_TRANSFER_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def check_sha256(expected: str) -> Verifier:
    """A verifier raising ``DataError`` unless the file's SHA-256 is ``expected``."""
    def verify(path: Path) -> None:
        actual = sha256_of(path)
        if actual != expected:
            raise DataError(f"{path}: SHA-256 {actual}, expected {expected}")
    return verify


def check_gunzipped_sha256(expected: str) -> Verifier:
    """A verifier raising ``DataError`` unless the file gunzips to content whose SHA-256 is ``expected``."""
    def verify(path: Path) -> None:
        try:
            with gzip.open(path, "rb") as stream:
                actual = hashlib.file_digest(stream, "sha256").hexdigest()
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: not a valid gzip file ({error})") from None
        if actual != expected:
            raise DataError(f"{path}: SHA-256 of the decompressed data {actual}, expected {expected}")
    return verify


def check_numpy_bitmap(path: Path) -> None:
    """Raise ``DataError`` unless ``path`` is a complete .npy file of shape (N >= 1, 784), uint8."""
    bitmaps = open_bitmaps(path)  # checks header, dtype, shape, and that the file holds all the rows
    count = len(bitmaps)
    del bitmaps
    if count == 0:
        raise DataError(f"{path}: holds no drawings")


def _transfer(url: str, part: Path, label: str, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into ``part``, continuing after the bytes already there when the server allows it."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == HTTP_RANGE_NOT_SATISFIABLE and offset:
            return  # the .part is already complete: verification decides whether to keep it
        raise
    with response:
        resumed = response.status == HTTP_PARTIAL_CONTENT and response.headers.get(
            "Content-Range", "").startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # the server ignored Range (or answered another one): start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with open(part, "ab" if resumed else "wb") as output, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
            disable=not progress, leave=False,
        ) as bar:
            while chunk := response.read(CHUNK_BYTES):
                output.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size < total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def download_file(
    urls: str | Sequence[str],
    destination: str | os.PathLike,
    *,
    sha256: str | None = None,
    verify: Verifier | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT_SECONDS,
) -> Path:
    """Download ``destination`` from the first of ``urls`` that delivers a file passing the checks.

    A ``destination`` that already passes the checks is kept as is. ``verify`` raises ``DataError`` for a bad
    file; ``sha256`` is a shortcut for ``check_sha256``. Raises ``DownloadError`` listing each mirror's failure.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("download_file expects at least one URL")
    checks = [check for check in (check_sha256(sha256) if sha256 else None, verify) if check]

    def problem_with(path: Path) -> str | None:
        try:
            for check in checks:
                check(path)
        except DataError as error:
            return str(error)
        return None

    destination = Path(destination)
    if destination.is_file() and problem_with(destination) is None:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + PART_SUFFIX)
    failures = []
    for url in urls:
        for attempt in ("resume", "restart"):
            resuming = part.exists() and part.stat().st_size > 0
            try:
                _transfer(url, part, destination.name, progress, timeout)
            except _TRANSFER_ERRORS as error:
                failures.append(f"{url}: {error}")  # the .part stays, for the next mirror to resume
                break
            problem = problem_with(part)
            if problem is None:
                os.replace(part, destination)
                return destination
            part.unlink()
            if not (resuming and attempt == "resume"):  # a fresh download that fails verification: next mirror
                failures.append(f"{url}: {problem.removeprefix(f'{part}: ')}")
                break
    raise DownloadError(f"{destination}: download failed from every mirror: {'; '.join(failures)}")


def download_mnist(
    data_dir: str | os.PathLike = "datasets/mnist",
    *,
    source: str = "idx",
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download MNIST into ``data_dir``: the four IDX .gz files (``source="idx"``) or Keras' ``mnist.npz``.

    ``mirrors`` replaces the default base URLs (folders for "idx", full file URLs for "npz").
    """
    data_dir = Path(data_dir)
    if source == "npz":
        return [download_file(mirrors or KERAS_MNIST_URLS, data_dir / NPZ_NAME, sha256=KERAS_MNIST_SHA256,
                              progress=progress)]
    if source != "idx":
        raise ValueError(f"Unknown MNIST source {source!r}. Expected one of: idx, npz")
    bases = [base if base.endswith("/") else base + "/" for base in (mirrors or MNIST_IDX_MIRRORS)]
    stems = [stem for split in ("train", "test") for stem in SPLIT_FILES[split]]
    return [
        download_file([base + f"{stem}.gz" for base in bases], data_dir / f"{stem}.gz",
                      verify=check_gunzipped_sha256(MNIST_IDX_SHA256[stem]), progress=progress)
        for stem in stems
    ]


def quickdraw_url(class_name: str, base_url: str = QUICKDRAW_URL) -> str:
    """The numpy_bitmap URL of a class, its name URL-encoded ("The Eiffel Tower" -> "The%20Eiffel%20Tower.npy")."""
    return base_url.rstrip("/") + "/" + urllib.parse.quote(class_name, safe="") + FILE_SUFFIX


def download_quickdraw(
    classes: str | Sequence[str],
    data_dir: str | os.PathLike = "datasets/quickdraw",
    *,
    base_urls: Sequence[str] = (QUICKDRAW_URL,),
    progress: bool = True,
) -> list[Path]:
    """Download the numpy_bitmap file of each class (~100 MB each) into ``data_dir/<class>.npy``.

    Class names become file names: each must be a safe name (letters, digits, spaces, ``_ - ' . &``; no path
    separator, no "..") and its file must resolve inside ``data_dir``, or nothing is downloaded."""
    names = [classes] if isinstance(classes, str) else list(classes)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise ValueError(f"download_quickdraw expects class names such as ['cat', 'apple']. Received: {classes!r}")
    destinations = [path_inside(data_dir, safe_name("download_quickdraw", "classes", name) + FILE_SUFFIX)
                    for name in names]
    return [
        download_file([quickdraw_url(name, base) for base in base_urls], destination, verify=check_numpy_bitmap,
                      progress=progress)
        for name, destination in zip(names, destinations, strict=True)
    ]


def fetch_quickdraw(
    data_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """The catalog's QuickDraw downloader: ``download_quickdraw`` called like every other dataset's."""
    if not classes:
        raise ValueError("Downloading QuickDraw needs class names, e.g. classes=['cat', 'apple'] "
                         "(the list: https://github.com/googlecreativelab/quickdraw-dataset/blob/master/categories.txt)")
    return download_quickdraw(classes, data_dir, base_urls=mirrors or (QUICKDRAW_URL,), progress=progress)
