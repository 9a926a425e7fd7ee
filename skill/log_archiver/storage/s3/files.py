"""The local side of an S3 upload: checks, per-part SHA-256s and part windows of a file.

Files are read in blocks and parts are sent as windows of one open file, so nothing is
ever held whole in memory.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from log_archiver.errors import ChecksumMismatchError, LocalFileError, StorageNotFoundError

BLOCK_SIZE = 1 << 20
RERUN = "the local file changed since it was prepared; run prepare-upload again"


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def check_local(path: Path, size: int, sha256: str) -> None:
    try:
        actual = os.stat(path).st_size
    except FileNotFoundError as error:
        raise StorageNotFoundError(f"local file {path} to upload is missing",
                                   "run collect-logs and prepare-upload again") from error
    except OSError as error:
        raise LocalFileError(f"cannot read {path}: {error.strerror or error}",
                             "make the file readable and run again") from error
    if actual != size:
        raise ChecksumMismatchError(f"{path} is {actual} bytes, expected {size} "
                                    f"(sha256 {sha256})", RERUN)


@contextmanager
def open_local(path: Path) -> Iterator[Any]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise LocalFileError(f"cannot read {path}: {error.strerror or error}",
                             "make the file readable and run again") from error
    with handle:
        yield handle


def hash_parts(path: Path, ranges: list[tuple[int, int]], sha256: str) -> list[str]:
    """One pass over the file: each part's SHA-256 (base64), checked against the whole."""
    whole, digests = hashlib.sha256(), []
    with open_local(path) as handle:
        for _offset, length in ranges:
            part, left = hashlib.sha256(), length
            while left and (block := handle.read(min(BLOCK_SIZE, left))):
                part.update(block)
                whole.update(block)
                left -= len(block)
            digests.append(base64.b64encode(part.digest()).decode("ascii"))
    if whole.hexdigest() != sha256:
        raise ChecksumMismatchError(f"bytes read from {path} have sha256 "
                                    f"{whole.hexdigest()}, expected {sha256}", RERUN)
    return digests


class Slice:
    """A seekable window ``[offset, offset + length)`` of an open file, read in place."""

    def __init__(self, handle: Any, offset: int, length: int):
        self._handle, self._offset, self._length, self._pos = handle, offset, length, 0

    def read(self, amount: int | None = -1) -> bytes:
        left = self._length - self._pos
        amount = left if amount is None or amount < 0 else min(amount, left)
        if amount <= 0:
            return b""
        self._handle.seek(self._offset + self._pos)
        data = self._handle.read(amount)
        self._pos += len(data)
        return data

    def seek(self, position: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, min(self._length, base + position))
        return self._pos

    def tell(self) -> int:
        return self._pos
