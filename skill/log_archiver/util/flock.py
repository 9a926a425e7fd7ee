"""An exclusive ``flock(2)`` lock on a file beside what it guards.

The kernel drops the lock when its holder ends, however it ends, so a killed run never
leaves the lock held; the file itself stays (a waiter always locks the same inode).
``cleanup-local --orphans`` may unlink a lock file no one holds: a waiter that then wins
the lock on the unlinked inode opens the path again.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 0.05


class LockTimeout(Exception):
    """The lock stayed held by another process for the whole timeout."""


def _open(path: Path) -> int:
    # never through a symlink: the lock file is ours, beside the index
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def _take(path: Path, deadline: float) -> int:
    while True:
        fd = _open(path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(str(path)) from None
                    time.sleep(POLL_SECONDS)
            if os.fstat(fd).st_nlink > 0:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # unlinked while we waited: lock the file now at the path


def acquire(path: Path, timeout: float) -> int:
    """Take the lock on ``path`` (made when missing); the descriptor to :func:`release`.
    :class:`LockTimeout` after ``timeout`` seconds of another holder, ``OSError`` when
    it cannot be opened (a symlink is refused)."""
    return _take(Path(path), time.monotonic() + timeout)


def release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def held(path: Path, timeout: float) -> Iterator[None]:
    """The lock on ``path`` for the block (see :func:`acquire`)."""
    fd = acquire(path, timeout)
    try:
        yield
    finally:
        release(fd)
