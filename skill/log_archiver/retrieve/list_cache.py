"""What ``list`` needs of every entry, kept between runs: its sort key and where it is.

Ordering 10,000 entries needs two fields of each, but reading them means reading and
splitting the whole index (tens of MB). So the first ``list`` after the index changed
records, per entry, ``(archived_at as an instant, issue_number, archive_reason, offset,
length)`` in the user's cache folder, keyed by the index file's identity (device, inode,
size, modification and change times: what the index's own validity record trusts). A
later ``list`` of the same file reads the keys, then only the entries of its page, at
their offsets, from the file it opened and checked. It is derived data: deleted, stale or
damaged, it is simply built again; it is never in git and never the only record of
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from log_archiver.repository import Repository

VERSION = 1
Rows = tuple[list[tuple[str, int, object]], Callable[[int], dict]]


def cache_path(index_file: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(os.fsencode(os.path.realpath(index_file))).hexdigest()[:32]
    return base / "log-archiver" / "list" / f"{name}.json"


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def cached_rows(repo: Repository, uncached: Callable[[], Rows]) -> Rows:
    """The rows from the cache when it describes the index as it is now, else from
    ``uncached()`` (recording them for next time when the index is in its layout)."""
    index_file = repo.index.file
    try:
        fd = os.open(index_file, os.O_RDONLY)
    except OSError:
        return uncached()
    try:
        identity = _identity(os.fstat(fd))
        rows = _load(cache_path(index_file), identity, fd)
        if rows is not None:
            return rows
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    keys, entry = uncached()
    _store(repo, index_file, identity, keys)
    return keys, entry


def _load(path: Path, identity: list[int], fd: int) -> Rows | None:
    try:
        data = orjson.loads(path.read_bytes())
        if data.get("v") != VERSION or data.get("identity") != identity:
            return None
        rows = data["rows"]
        keys = [(str(at), int(issue), reason) for at, issue, reason, _o, _l in rows]
        spans = [(int(offset), int(length)) for _a, _i, _r, offset, length in rows]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None

    def entry(row: int) -> dict:
        offset, length = spans[row]
        found = orjson.loads(b"{\n" + os.pread(fd, length, offset) + b"\n}")
        if found.get("issue_number") != keys[row][1]:
            raise ValueError("the list cache does not match the index")
        return found

    try:  # one entry parsed back proves the offsets belong to these bytes
        if keys:
            entry(len(keys) // 2)
    except (OSError, ValueError):
        return None
    return keys, entry


def _store(repo: Repository, index_file: Path, identity: list[int],
           keys: list[tuple[str, int, object]]) -> None:
    """Best effort: without the cache the next ``list`` reads the index again."""
    document = repo.index.snapshot()
    spans = document.spans()
    try:
        if spans is None or len(spans) != len(keys) \
                or _identity(os.stat(index_file)) != identity:
            return  # not in the layout, or changed while it was read
        by_issue = {issue: span for issue, span in zip(document.issues(), spans, strict=True)}
        rows = [[at, issue, reason, *by_issue[issue]] for at, issue, reason in keys]
        path = cache_path(index_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps({"v": VERSION, "identity": identity, "rows": rows}))
        os.replace(temp, path)
    except (OSError, KeyError, ValueError):
        pass
