"""Writing a file so that a crash never leaves half of it: under a temporary name beside the target, locked while
it is written, then renamed into place (``os.replace`` is atomic on one file system). Temporary files that an
interrupted write left behind are removed by the next write into the same folder, never one a running write
holds."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: a file open in another process cannot be deleted, which protects it as well
    fcntl = None

TEMPORARY_SUFFIX = ".neuralnetworks-tmp"
TEMPORARY_NAME = re.compile(r"\..+\.[0-9]+\.[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX))


def write_npz(target: Path, payload: dict[str, np.ndarray]) -> Path:
    """Write ``payload`` as an ``.npz`` at ``target`` atomically; return ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent)
    tmp_name = target.parent / temporary_name(target)
    # os.open with mode 0o666 honours the umask, so the file gets ordinary permissions (mkstemp would give 0600).
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            locked = _lock(handle)
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
            if locked:  # renamed while still locked, so no other save can take it for a leftover meanwhile
                os.replace(tmp_name, target)
        if not locked:
            os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def temporary_name(target: Path) -> str:
    """The name a save writes ``target`` under first: ".<name>.<pid>.<random>.neuralnetworks-tmp"."""
    return f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"


def _lock(handle: Any) -> bool:
    """Hold an exclusive lock on the open temporary file (released when it closes); False where there is none."""
    if fcntl is None:
        return False
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Delete what interrupted saves left in ``folder`` and return it: only regular files (never a symlink)
    named like ``temporary_name``, owned by this user, that no running save holds (it keeps its temporary file
    locked; where files cannot be locked, a file another process holds open cannot be deleted)."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if TEMPORARY_NAME.fullmatch(entry.name) is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
                continue
            if _abandoned(entry.path):
                Path(entry.path).unlink()
                removed.append(Path(entry.path))
        except OSError:
            continue  # taken by a running save, or gone meanwhile
    return removed


def _abandoned(path: str) -> bool:
    """True unless a running save holds the temporary file ``path`` locked."""
    if fcntl is None:
        return True
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True
