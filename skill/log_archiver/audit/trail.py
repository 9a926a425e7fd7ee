"""The append-only audit trail: one JSON line per change to the archive, a file per day.

``<logs_dir>/.archive-audit/YYYY-MM-DD.jsonl`` (the UTC day of the line's time), beside
the index it describes and committed with it. Each line is written by one ``write`` to a
file opened with ``O_APPEND`` before the writer goes on, so concurrent writers never
interleave within a line, and a process killed at any point leaves at most its last
line incomplete. A line is synced to disk at once, or, inside :meth:`AuditTrail.deferred`
(an archive of many files), before the index is next written and when the block ends:
the index never records on disk a change whose line is not there too. Nothing ever
rewrites or removes a line: a line that was cut short (the machine lost power mid-write)
stays, and the next writer starts on a line of its own; the reader (:mod:`.reader`)
skips such a line and counts it.

Two branches that append to the same day's file merge line by line (``merge=union`` in
``.gitattributes``, installed by ``init``): the order of lines from different branches
is not meaningful, their ``time`` is.

Lines never carry a secret: every text in them has the userinfo of any URL removed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from log_archiver import __version__
from log_archiver.util.fsutil import fsync_dir
from log_archiver.util.urls import redact_userinfo

AUDIT_DIR = ".archive-audit"
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
FIELDS = ("time", "op", "issue", "file", "bytes", "checksum", "outcome", "version", "user")


def audit_dir(logs_dir: Path) -> Path:
    return Path(logs_dir) / AUDIT_DIR


def day_file(folder: Path, moment: datetime) -> Path:
    return Path(folder) / f"{moment.astimezone(UTC):%Y-%m-%d}.jsonl"


def scrubbed(value):
    """``value`` with the userinfo of every URL in every text removed."""
    if isinstance(value, str):
        return redact_userinfo(value)
    if isinstance(value, dict):
        return {str(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


def git_user(cwd: Path | None) -> str | None:
    """``Name <email>`` as git would sign a commit here, or None when git knows no one."""
    try:
        done = subprocess.run(["git", "var", "GIT_AUTHOR_IDENT"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    ident = done.stdout.strip()
    if done.returncode != 0 or ">" not in ident:
        return None
    return redact_userinfo(ident[:ident.rindex(">") + 1])


class AuditTrail:
    """Appends lines to the day files under ``folder``; safe to share between threads."""

    def __init__(self, folder: Path, *, user_cwd: Path | None = None, clock=None):
        self.folder = Path(folder)
        self._user_cwd = user_cwd
        self._user: str | None = None
        self._user_known = False
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._checked: set[Path] = set()  # files whose end this process has looked at
        self.touched: set[Path] = set()   # day files this process appended to
        self._deferring = 0
        self._unsynced: set[Path] = set()
        self._new_files: set[Path] = set()  # whose folder entry is not synced yet

    @property
    def user(self) -> str | None:
        if not self._user_known:
            self._user, self._user_known = git_user(self._user_cwd), True
        return self._user

    def record(self, op: str, *, issue: int | None = None, file: str | None = None,
               bytes: int | None = None, checksum: str | None = None,
               outcome: str = "ok", **details) -> dict:
        """Append one line; returns what was written (as a dict)."""
        moment = self._clock()
        line = {"time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "op": op, "issue": issue, "file": file, "bytes": bytes,
                "checksum": checksum, "outcome": outcome, "version": __version__,
                "user": self.user}
        if details:
            line["details"] = details
        line = scrubbed(line)
        self.append(day_file(self.folder, moment), line)
        return line

    def append(self, path: Path, line: dict) -> None:
        data = (json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        with self._lock:
            created = not path.exists()
            if created:
                self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if path not in self._checked:
                    self._checked.add(path)
                    if not created and not _ends_a_line(fd):
                        data = b"\n" + data  # a line cut short stays; ours starts afresh
                written = os.write(fd, data)
                while written < len(data):  # a short write (a full disk): never glued
                    written += os.write(fd, data[written:])
                if self._deferring:
                    self._unsynced.add(path)
                else:
                    _datasync(fd)
            finally:
                os.close(fd)
            if created:
                if self._deferring:
                    self._new_files.add(path)
                else:
                    fsync_dir(path.parent)
            self.touched.add(path)

    @contextmanager
    def deferred(self):
        """Lines written inside are synced together: by :meth:`sync` (the index calls it
        before each write) and when the block ends."""
        with self._lock:
            self._deferring += 1
        try:
            yield self
        finally:
            with self._lock:
                self._deferring -= 1
            self.sync()

    def sync(self) -> None:
        """Sync every line written and not synced yet."""
        with self._lock:
            for path in sorted(self._unsynced):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _datasync(fd)
                finally:
                    os.close(fd)
            for folder in sorted({path.parent for path in self._new_files}):
                fsync_dir(folder)
            self._unsynced.clear()
            self._new_files.clear()


def _datasync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)  # the bytes and the size: enough


def _ends_a_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def day_files(folder: Path) -> list[tuple[str, Path]]:
    """``(YYYY-MM-DD, path)`` of every day file under ``folder``, oldest first."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = DAY_FILE.match(name)
        if match and (Path(folder) / name).is_file():
            found.append((match.group(1), Path(folder) / name))
    return sorted(found)
