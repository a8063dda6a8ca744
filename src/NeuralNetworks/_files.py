"""Opening files named from outside: only regular files, never a FIFO (which would block), a device (/dev/zero
never ends) or a folder, whatever symlinks lead there; each failure is one line for the caller's error class."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _open_error(path: Path, problem: OSError, error: type[Exception], what: str) -> Exception:
    if isinstance(problem, FileNotFoundError):
        return error(f"{path}: no such {what}")
    if isinstance(problem, IsADirectoryError):
        return error(f"{path}: expected a {what}, found a folder")
    return error(f"{path}: cannot open the {what} ({_reason(problem)})")


def open_regular(path: str | os.PathLike, error: type[Exception], what: str = "file") -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; else raise ``error("<path>: ...")``.

    The file is opened without blocking and checked with ``fstat`` on the open descriptor, so a FIFO cannot
    hang the caller and a symlink swapped after a check cannot slip a device in.
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as problem:
        raise _open_error(path, problem, error, what) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: expected a regular {what}, found {_kind(mode)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def require_regular(path: str | os.PathLike, error: type[Exception], what: str = "file") -> int:
    """Raise ``error`` unless ``path`` (symlinks followed) is a regular file; return its size in bytes.

    For readers that need a path rather than an open file (a memory map)."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as problem:
        raise _open_error(path, problem, error, what) from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: expected a regular {what}, found {_kind(info.st_mode)}")
    return info.st_size
