"""SHA-256 of files, read in blocks so memory stays flat; and what this process hashed,
so that a check moments later (cleanup, before it deletes a log) need not read it again."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from stat import S_ISREG

BLOCK_SIZE = 1 << 20


def sha256_file(path: Path | str) -> str:
    return sha256_and_size(path)[0]


def sha256_and_size(path: Path | str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def prefixed(hex_digest: str) -> str:
    """The index form of a checksum: ``sha256:<hex>``."""
    return f"sha256:{hex_digest}"


def bare(checksum: str) -> str:
    """The hex digest of an index checksum (``sha256:<hex>`` or plain hex)."""
    return checksum.split(":", 1)[1] if ":" in checksum else checksum


# --- what this process hashed ------------------------------------------------------------

RACY_SECONDS = 0.1  # a change this close before a hash may share its times with a later one
COARSE_RACY_SECONDS = 2.0  # the same on a filesystem that keeps whole seconds
REMEMBERED_MOST = 10_000  # files remembered at once: a worker runs for days
_hashed: dict[str, tuple[tuple, str]] = {}
_hashed_lock = threading.Lock()


def remember_bounded(memo: dict, key, value) -> None:
    """``memo[key] = value``, forgetting the oldest past :data:`REMEMBERED_MOST` (a
    memo of what a long-lived process did must not grow with everything it did). Callers
    hold their own lock when threads share ``memo``."""
    memo.pop(key, None)
    memo[key] = value
    while len(memo) > REMEMBERED_MOST:
        memo.pop(next(iter(memo)))


def file_identity(stat: os.stat_result) -> tuple:
    """What changes whenever a file's bytes do (ctime cannot be set back by hand)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def remember_digest(path: Path | str, before: os.stat_result, after: os.stat_result,
                    seen_at_ns: int, hex_digest: str) -> None:
    """Note that ``path`` held bytes with ``hex_digest`` when hashed: ``before`` and
    ``after`` are the stats of the open file before its first byte was read (at
    ``seen_at_ns``, ``time.time_ns()``) and after its last. Kept only when nothing changed
    meanwhile and its last change lies well before the hash began: a write in the same
    clock tick as the change before it keeps the times (git's "racy" case), so a file
    changed just before it was hashed is hashed again when asked."""
    if file_identity(after) != file_identity(before) or not S_ISREG(after.st_mode):
        return
    coarse = before.st_mtime_ns % 1_000_000_000 == 0 and before.st_ctime_ns % 1_000_000_000 == 0
    margin = int((COARSE_RACY_SECONDS if coarse else RACY_SECONDS) * 1e9)
    if max(before.st_mtime_ns, before.st_ctime_ns) > seen_at_ns - margin:
        return
    with _hashed_lock:
        remember_bounded(_hashed, os.fspath(path), (file_identity(after), hex_digest))


def remembered_entries(paths) -> list[tuple[str, tuple, str]]:
    """What this process remembers of ``paths``: ``(path, identity, digest)`` each, for
    another process of the same run to :func:`adopt_remembered` (a batch compressing
    ahead in a child process hands its parent what it hashed)."""
    with _hashed_lock:
        known = [(os.fspath(path), _hashed.get(os.fspath(path))) for path in paths]
    return [(path, *entry) for path, entry in known if entry is not None]


def adopt_remembered(entries) -> None:
    """Remember what :func:`remembered_entries` gave in another process."""
    with _hashed_lock:
        for path, identity, digest in entries:
            remember_bounded(_hashed, str(path), (tuple(identity), str(digest)))


def remembered_digest(path: Path | str, stat: os.stat_result) -> str | None:
    """The SHA-256 this process took of ``path`` (see :func:`remember_digest`) if the
    file, as ``stat`` finds it now, is still exactly the one hashed; else None."""
    with _hashed_lock:
        known = _hashed.get(os.fspath(path))
    if known is None or known[0] != file_identity(stat):
        return None
    return known[1]
