"""Reading a ``.npz`` archive from outside without trusting it (model files, Keras' ``mnist.npz``).

``np.load`` believes what a file says: a zip directory of a million entries, a member that inflates a
thousandfold, a ``.npy`` header announcing a terabyte. ``NpzArchive`` first checks, against a ``Budget`` and
before any array data is read: the file is a regular file of bounded size, its zip directory is of bounded
size, every member is a plainly stored or deflated ``<key>.npy`` named once, the members' declared sizes
(which bound what zipfile will ever inflate) add up to a bounded total, and each member's ``.npy`` header
declares a plain numeric dtype and a shape whose data is exactly the member's size. Only then may the caller
compare the headers with what it expects and ``read`` arrays, one at a time, without pickle.
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from ._files import open_regular
from ._validation import first_line, printable
from .budget import Budget, bytes_text

ZIP_MAGIC = b"PK\x03\x04"  # every .npz starts with a zip local-file header
END_RECORD = struct.Struct("<4s4H2LH")  # the zip "end of central directory" record
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
ZIP64_END_SIGNATURE = b"PK\x06\x06"
MAX_ZIP_COMMENT = 0xFFFF
ZIP64_MARKER = 0xFFFF
CENTRAL_ENTRY_BYTES = 1024  # budget per directory entry: 46 fixed bytes, the name, a zip64 extra field
ENCRYPTED_FLAG = 0x1
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
NPY_SUFFIX = ".npy"
NPY_VERSIONS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
NUMERIC_KINDS = "biuf"  # bool, integers, floats: the only dtypes an archive may hold (no objects, no complex)
# zipfile and numpy's .npy header parser are not written for hostile input: whatever they raise on a damaged file
# (BadZipFile, zlib.error, EOFError, IndexError, struct.error, SyntaxError in a header literal, ...) means
# "unreadable", reported with the error's first line.
PARSER_ERRORS = (Exception,)


@dataclass(frozen=True)
class ArrayHeader:
    """What a member's ``.npy`` header declares, checked to match the member's size."""

    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


class NpzArchive:
    """An ``.npz`` file whose directory and headers passed the checks; ``headers`` by key, ``read(key)``.

    ``error`` is the exception class raised (one line naming the file); ``kind`` names the format in messages
    ("NeuralNetworks model file"), ``what`` the file when it cannot be opened ("model file"); ``max_bytes``
    bounds the file and its decompressed arrays, and ``limit_name`` is the ``Budget`` field it comes from,
    named in messages so that the reader knows what to raise.
    """

    def __init__(self, path: str | Path, budget: Budget, error: type[Exception], *, kind: str, what: str,
                 max_bytes: int, limit_name: str) -> None:
        self.path, self.budget, self.error, self.kind = Path(path), budget, error, kind
        self._handle: BinaryIO = open_regular(self.path, error, what)
        self._zip: zipfile.ZipFile | None = None
        try:
            self._zip = self._open_zip(max_bytes, limit_name)
            self.headers = {key: self._header(key, info) for key, info in self._members.items()}
        except OSError as problem:  # e.g. a file under /proc that stat calls regular but cannot be read
            self.close()
            raise self._fail(f"it cannot be read: {problem.strerror or problem}") from None
        except BaseException:
            self.close()
            raise

    # -- checks -------------------------------------------------------------------------------------------
    def _fail(self, reason: str) -> Exception:
        return self.error(f"{self.path}: not a readable {self.kind} ({reason})")

    def _open_zip(self, max_bytes: int, limit_name: str) -> zipfile.ZipFile:
        budget, handle = self.budget, self._handle
        size = handle.seek(0, 2)
        if size > max_bytes:
            raise self.error(f"{self.path}: the file is {bytes_text(size)}, more than the budget's {limit_name} "
                             f"({bytes_text(max_bytes)})")
        handle.seek(0)
        if handle.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise self.error(f"{self.path}: not a {self.kind} (expected a .npz archive)")
        entries, directory_bytes = self._directory_size(size)
        if entries > budget.max_archive_members or directory_bytes > budget.max_archive_members * CENTRAL_ENTRY_BYTES:
            raise self.error(f"{self.path}: the archive lists {entries} members in {bytes_text(directory_bytes)}, "
                             f"more than the budget's max_archive_members ({budget.max_archive_members})")
        try:
            archive = zipfile.ZipFile(handle)
        except PARSER_ERRORS as problem:
            raise self._fail(first_line(problem)) from None
        try:
            self._members = self._check_members(archive.infolist(), size, max_bytes, limit_name)
        except BaseException:
            archive.close()
            raise
        return archive

    def _directory_size(self, size: int) -> tuple[int, int]:
        """(entries, bytes) of the zip directory, from the end record (zip64's if present), before zipfile
        reads and parses the whole directory."""
        handle = self._handle
        tail_start = max(0, size - END_RECORD.size - MAX_ZIP_COMMENT)
        handle.seek(tail_start)
        tail = handle.read()
        position = tail.rfind(END_SIGNATURE)
        if position < 0 or len(tail) - position < END_RECORD.size:
            raise self._fail("no zip directory at its end: the file is truncated, or data was appended")
        record = END_RECORD.unpack_from(tail, position)
        entries, directory_bytes = record[4], record[5]
        locator_at = position - ZIP64_LOCATOR.size
        if entries == ZIP64_MARKER or directory_bytes == 0xFFFFFFFF:
            if locator_at < 0 or tail[locator_at:locator_at + 4] != ZIP64_LOCATOR_SIGNATURE:
                raise self._fail("a zip64 directory without its locator")
            offset = ZIP64_LOCATOR.unpack_from(tail, locator_at)[2]
            if offset + ZIP64_END_RECORD.size > size:
                raise self._fail("a zip64 directory record beyond the end of the file")
            handle.seek(offset)
            raw = handle.read(ZIP64_END_RECORD.size)
            if raw[:4] != ZIP64_END_SIGNATURE:
                raise self._fail("a damaged zip64 directory record")
            fields = ZIP64_END_RECORD.unpack(raw)  # signature, size, versions (2), disks (2), entries here, entries
            entries, directory_bytes = fields[7], fields[8]  # in all, directory bytes, directory offset
        return entries, directory_bytes

    def _check_members(self, infos: list[zipfile.ZipInfo], size: int, max_bytes: int,
                       limit_name: str) -> dict[str, zipfile.ZipInfo]:
        budget, members, total = self.budget, {}, 0
        if len(infos) > budget.max_archive_members:
            raise self.error(f"{self.path}: the archive holds {len(infos)} members, more than the budget's "
                             f"max_archive_members ({budget.max_archive_members})")
        for info in infos:
            name = info.filename
            shown = repr(printable(name, 80))
            if len(name) > budget.max_member_name_chars + len(NPY_SUFFIX):
                raise self._fail(f"member name {shown} is longer than {budget.max_member_name_chars} characters")
            if not name.endswith(NPY_SUFFIX) or "\x00" in name:
                raise self._fail(f"member {shown} is not a .npy array")
            key = name[:-len(NPY_SUFFIX)]
            if key in members:
                raise self._fail(f"member {shown} appears twice")
            if info.flag_bits & ENCRYPTED_FLAG:
                raise self._fail(f"member {shown} is encrypted")
            if info.compress_type not in COMPRESSIONS:
                raise self._fail(f"member {shown} uses compression method {info.compress_type}; expected "
                                 "stored or deflated")
            total += info.file_size
            members[key] = info
        if total > max_bytes:
            raise self.error(f"{self.path}: its arrays take {bytes_text(total)} once decompressed, more than the "
                             f"budget's {limit_name} ({bytes_text(max_bytes)})")
        if total > budget.inflation_limit(size):
            raise self.error(f"{self.path}: {bytes_text(size)} that decompress to {bytes_text(total)} (a "
                             f"decompression bomb?); the budget allows {budget.max_inflation_ratio}x past "
                             f"{bytes_text(budget.inflation_floor_bytes)} (max_inflation_ratio)")
        return members

    def _header(self, key: str, info: zipfile.ZipInfo) -> ArrayHeader:
        """Read and check one member's .npy header, leaving its data unread."""
        try:
            with self._zip.open(info) as stream:
                version = npy_format.read_magic(stream)
                if version not in NPY_VERSIONS:
                    raise ValueError(f".npy format version {version} (expected 1.0 or 2.0)")
                shape, fortran_order, dtype = NPY_VERSIONS[version](
                    stream, max_header_size=self.budget.max_npy_header_bytes)
                data_offset = stream.tell()
        except PARSER_ERRORS as problem:
            raise self._fail(f"member {key!r} has no valid .npy header: {first_line(problem)}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or \
                dtype.kind not in NUMERIC_KINDS:
            raise self._fail(f"array {key!r} has dtype {dtype}; expected plain numbers (bool, int or float)")
        if not all(type(d) is int and d >= 0 for d in shape):
            raise self._fail(f"array {key!r} has shape {shape}; expected non-negative integers")
        header = ArrayHeader(key, dtype, tuple(shape), bool(fortran_order))
        if data_offset + header.nbytes != info.file_size:
            raise self._fail(f"array {key!r} declares {header.shape} {dtype} ({header.nbytes} bytes) but its "
                             f"member holds {info.file_size - data_offset} bytes of data")
        return header

    # -- reading ------------------------------------------------------------------------------------------
    def read(self, key: str) -> np.ndarray:
        """The array ``key``, read without pickle; its header was checked when the archive was opened."""
        try:
            with self._zip.open(self._members[key]) as stream:
                return npy_format.read_array(stream, allow_pickle=False,
                                             max_header_size=self.budget.max_npy_header_bytes)
        except PARSER_ERRORS as problem:
            raise self._fail(f"array {key!r} cannot be read: {first_line(problem)}") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._handle.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
