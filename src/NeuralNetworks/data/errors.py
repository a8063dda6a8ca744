"""The error every data loader raises for a bad or missing file: one line naming the file and the expectation."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset file is missing, truncated or not in the expected format.

    The message is a single line that names the file (or folder) and says what was expected, e.g.
    ``"data/train-images-idx3-ubyte.gz: bad magic number 0x00000801, expected 0x00000803 (IDX images)"``,
    so a command line can print it as ``error: ...`` and exit with status 2.
    """


class DownloadError(DataError):
    """No mirror delivered a file that passed verification; the message lists what each mirror did."""


class ClassCountError(DataError):
    """A dataset to train a classifier on has fewer than two classes, or a class without a training sample
    (``splits.require_classes``): training would run and learn nothing about that class."""
