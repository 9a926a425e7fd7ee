"""Orphaned files under the logs dir: what killed or abandoned runs left behind.

In the logs dir and its log folders, three kinds, each only in the shapes we produce:

- compressed copies ``.X.la.gz`` / ``.X.la.zst`` (or ``X.gz`` / ``X.zst``, as older
  releases named them) older than 7 days that no index record names,
  whose log ``X`` is still beside them and which decompress to exactly ``X``'s bytes (so
  removing one loses nothing; a compressed file without its log may be a log itself);
- our temp files (``NAME.la-PID-HEX.tmp``, ``.NAME.PID[.HEX].part``) older than 24 hours;
- our lock files (``.archive-index.json.lock``) older than 1 hour that no live process
  holds.

In the store (when it can hold such things, see ``AbandonedUpload``):

- temp files of a ``file://`` store whose writing process is no longer running;
- incomplete S3 multipart uploads under the store's prefix begun over 24 hours ago (S3
  cannot say whether their writer still runs, so age decides; ``upload_age`` sets it).

How a lock's process is known to be gone: the index lock is an ``flock(2)`` lock
(:mod:`log_archiver.util.flock`), which the kernel drops when the holding process ends, however
it ends. So instead of recording a pid (which can be reused), the check asks the kernel:
a non-blocking ``flock`` that succeeds proves no live process holds the file. The file is
unlinked while that flock is held, so a process already waiting on it finds, once it gets
the lock, that the file is unlinked and opens the new one (it checks ``st_nlink``).

Originals, anything an index record names and any copy of a log of an entry on legal hold
are never touched; every file is checked again just before it is removed.
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError
from log_archiver.index.file import ArchiveIndex
from log_archiver.model.copies import SUFFIX, copy_origin
from log_archiver.model.holds import is_held
from log_archiver.model.log_types import LOG_TYPES
from log_archiver.util.fsutil import TEMP_MARKER, TEMP_SUFFIX

DAY = 86_400.0
COMPRESSED_AGE = 7 * DAY
TEMP_AGE = DAY
LOCK_AGE = 3_600.0
UPLOAD_AGE = DAY
_TEMP = re.compile(re.escape(TEMP_MARKER) + r"\d+-[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")
_PART = re.compile(r"^\..+\.\d+(\.[0-9a-f]+)?\.part$")
_COMPRESSED = tuple(SUFFIX.values())


@dataclass
class OrphanReport:
    orphans: list[dict] = field(default_factory=list)   # removed (or, dry run, removable)
    kept: list[dict] = field(default_factory=list)      # looked like orphans; kept, and why
    failed: list[dict] = field(default_factory=list)
    freed_bytes: int = 0


def remove_leftovers(index: ArchiveIndex, logs_dir: Path, *, dry_run: bool = False,
                     now: float | None = None, store=None,
                     upload_age: float = UPLOAD_AGE) -> OrphanReport:
    """Remove (or, with ``dry_run``, list) the orphaned files under ``logs_dir``, and what
    unfinished uploads left in ``store`` (multipart uploads: begun over ``upload_age``
    seconds ago)."""
    logs_dir = Path(logs_dir)
    now = time.time() if now is None else now
    report = OrphanReport()
    temps, compressed = [], []
    for folder in [logs_dir, *(logs_dir / name for name in LOG_TYPES)]:
        for path, stat, names in _files(folder):
            relative = path.relative_to(logs_dir).as_posix()
            age = now - stat.st_mtime
            if _TEMP.search(path.name) or _PART.match(path.name):
                if age > TEMP_AGE:
                    temps.append((path, relative, stat, age))
            elif folder != logs_dir and path.name.endswith(_COMPRESSED) and age > COMPRESSED_AGE:
                compressed.append((path, relative, stat, age, names))
    if compressed:  # first: an unreadable index stops everything before anything goes
        if dry_run:
            _settle_compressed(compressed, _referenced(index), dry_run, report)
        else:
            with index.locked():  # no run records a compressed copy while we decide
                _settle_compressed(compressed, _referenced(index), dry_run, report)
    for path, relative, stat, age in temps:
        _remove(path, relative, "temp", "temp file of an unfinished write, untouched for over "
                "24 hours", stat, age, dry_run, report)
    # Locks last, once ours is released: while this process holds one it looks "alive".
    for lock in _lock_files(index, logs_dir):
        _settle_lock(lock, logs_dir, now, dry_run, report)
    if store is not None and store.capabilities.abandoned_uploads:
        _settle_store(store, now, upload_age, dry_run, report)
    return report


def _settle_store(store, now: float, upload_age: float, dry_run: bool,
                  report: OrphanReport) -> None:
    try:
        found = store.abandoned_uploads()
    except ArchiveError as error:
        report.failed.append({"path": store.url, "kind": "multipart", "type": error.type,
                              "message": f"cannot list unfinished uploads: {error.message}",
                              "retryable": error.retryable, "hint": error.hint})
        return
    for abandoned in found:
        age = max(0.0, now - abandoned.started) if abandoned.started is not None else 0.0
        if abandoned.kind == "store_temp":
            if not abandoned.removable:
                report.kept.append({"path": abandoned.location, "kind": abandoned.kind,
                                    "reason": "its upload is still running"})
                continue
            reason = "temp file of an upload whose process is gone"
        elif abandoned.started is None or age <= upload_age:
            report.kept.append({"path": abandoned.location, "kind": abandoned.kind,
                                "reason": f"multipart upload begun {int(age)} s ago; it may "
                                f"still be running (aborted after {int(upload_age)} s)"})
            continue
        else:
            reason = f"multipart upload never completed, begun over {int(upload_age)} s ago"
        record = {"path": abandoned.location, "kind": abandoned.kind, "reason": reason,
                  "age_seconds": int(age), "size_bytes": abandoned.size}
        if not dry_run:
            try:
                store.discard(abandoned)
            except ArchiveError as error:
                report.failed.append({"path": abandoned.location, "kind": abandoned.kind,
                                      "type": error.type, "message": error.message,
                                      "retryable": error.retryable, "hint": error.hint})
                continue
        report.orphans.append(record)
        report.freed_bytes += abandoned.size


def _lock_files(index: ArchiveIndex, logs_dir: Path) -> list[Path]:
    return [index.lock_path] if index.lock_path.parent == logs_dir else []


def _files(folder: Path):
    """(path, stat, names in the folder) of each regular file directly in ``folder``."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.is_file(follow_symlinks=False):
            try:
                yield Path(entry.path), entry.stat(follow_symlinks=False), names
            except FileNotFoundError:
                continue


def _referenced(index: ArchiveIndex) -> tuple[set[str], dict[str, int]]:
    """Every path an index record names (raises on a corrupt index: then nothing goes), and
    the logs of entries on legal hold (path -> issue)."""
    paths: set[str] = set()
    held: dict[str, int] = {}
    for entry in index.read()["archives"]:
        for log in entry["logs"]:
            paths.update((log["local_path"], log["stored_path"]))
            if is_held(entry):
                held[log["local_path"]] = entry["issue_number"]
    return paths, held


def _settle_compressed(candidates: list, known: tuple[set[str], dict[str, int]],
                       dry_run: bool, report: OrphanReport) -> None:
    referenced, held = known
    for path, relative, stat, age, names in candidates:
        origin = copy_origin(path.name)
        if origin is None:
            continue
        original, suffix = path.with_name(origin[0]), SUFFIX[origin[1]]
        keep = None
        of_log = relative.rsplit("/", 1)[0] + "/" + original.name
        if of_log in held:
            keep = f"a copy of a log of issue {held[of_log]}, which is on legal hold"
        elif relative in referenced:
            keep = "named by the archive index"
        elif original.name not in names:
            keep = "its log is not beside it, so it may be a log of its own"
        elif not _decompresses_to(path, suffix, original):
            keep = f"does not decompress to {original.name} (changed since, or not our copy)"
        if keep:
            report.kept.append({"path": relative, "kind": "compressed", "reason": keep})
            continue
        _remove(path, relative, "compressed", f"compressed copy of {original.name}, over 7 "
                "days old, in no index entry", stat, age, dry_run, report)


def _decompresses_to(path: Path, suffix: str, original: Path) -> bool:
    """Whether ``path`` decompresses to the bytes of ``original`` (compared block by block)."""
    import gzip
    import zlib

    import zstandard

    try:
        with open(path, "rb") as raw, open(original, "rb") as plain:
            if suffix == SUFFIX["gzip"]:
                reader = gzip.GzipFile(fileobj=raw)
            else:
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader:
                while block := reader.read(1 << 20):
                    if plain.read(len(block)) != block:
                        return False
                return plain.read(1) == b""
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        return False


def _settle_lock(lock: Path, logs_dir: Path, now: float, dry_run: bool,
                 report: OrphanReport) -> None:
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as error:
        report.kept.append({"path": lock.name, "kind": "lock",
                            "reason": f"cannot open: {error.strerror}"})
        return
    try:
        stat = os.fstat(fd)
        age = now - stat.st_mtime
        if age <= LOCK_AGE:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            reason = ("held by a running process" if error.errno in (
                errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
                else f"cannot tell whether a process holds it ({error.strerror})")
            report.kept.append({"path": lock.name, "kind": "lock", "reason": reason})
            return
        # Held by us now: remove it only if the name still means this very file.
        _remove(lock, lock.relative_to(logs_dir).as_posix(), "lock",
                "lock file over 1 hour old that no running process holds", stat, age, dry_run,
                report)
    finally:
        os.close(fd)  # releases our flock


def _remove(path: Path, relative: str, kind: str, reason: str, stat: os.stat_result,
            age: float, dry_run: bool, report: OrphanReport) -> None:
    record = {"path": relative, "kind": kind, "reason": reason, "age_seconds": int(age),
              "size_bytes": stat.st_size}
    if not dry_run:
        try:
            now_stat = os.lstat(path)
            if (now_stat.st_ino, now_stat.st_mtime_ns) != (stat.st_ino, stat.st_mtime_ns):
                report.kept.append({"path": relative, "kind": kind,
                                    "reason": "changed while being checked"})
                return
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as error:
            report.failed.append({"path": relative, "kind": kind,
                                  "message": error.strerror or str(error)})
            return
    report.orphans.append(record)
    report.freed_bytes += stat.st_size
