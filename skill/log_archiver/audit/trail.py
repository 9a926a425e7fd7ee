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

The folder and its day files are never reached through a symlink: one planted there
would send the trail's writes (and what the reader reports) to a file outside the logs
dir. Such a folder or file is refused with :class:`UnsafeAuditPath`, and the writer
opens both without following a link, so one planted mid-run is refused too.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from log_archiver import __version__
from log_archiver.errors import LocalFileError
from log_archiver.util.fsutil import fsync_dir, local_error
from log_archiver.util.urls import redact_userinfo

AUDIT_DIR = ".archive-audit"
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
FIELDS = ("time", "op", "issue", "file", "bytes", "checksum", "outcome", "version", "user")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class UnsafeAuditPath(LocalFileError):
    """The audit folder or a day file is a symlink (or not a folder / regular file)."""

    def __init__(self, path: Path, what: str):
        try:
            target = os.readlink(path)
        except OSError:
            target = None
        leads = f" (it points to {target!r})" if target is not None else ""
        super().__init__(
            f"audit trail {what} {str(path)!r}{leads}; it was not followed and nothing "
            "was written",
            f"remove {path} (move the real trail there if it lies elsewhere): the trail "
            "must be a folder of plain files inside the logs dir; then run the command "
            "again")
        self.path = Path(path)


def check_audit_path(path: Path, *, folder: bool) -> None:
    """Refuse ``path`` (the audit folder, or a day file in it) when it is a symlink or
    not what it should be; a missing one is fine (the writer makes it)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise local_error(error, "inspect", path) from error
    if stat.S_ISLNK(mode):
        raise UnsafeAuditPath(path, "folder is a symlink" if folder else "file is a symlink")
    if folder and not stat.S_ISDIR(mode):
        raise UnsafeAuditPath(path, "folder is not a folder")
    if not folder and not stat.S_ISREG(mode):
        raise UnsafeAuditPath(path, "file is not a regular file")


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
        self._day: tuple[str, Path] | None = None  # the last day written to, and its file

    @property
    def user(self) -> str | None:
        if not self._user_known:
            self._user, self._user_known = git_user(self._user_cwd), True
        return self._user

    def record(self, op: str, *, issue: int | None = None, file: str | None = None,
               bytes: int | None = None, checksum: str | None = None,
               outcome: str = "ok", **details) -> dict:
        """Append one line; returns what was written (as a dict)."""
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = {"time": stamp,
                "op": op, "issue": issue, "file": file, "bytes": bytes,
                "checksum": checksum, "outcome": outcome, "version": __version__,
                "user": self.user}
        if details:
            line["details"] = details
        line = scrubbed(line)
        self.append(self._day_file(stamp[:10]), line)
        return line

    def _day_file(self, day: str) -> Path:
        """The file of ``day`` (YYYY-MM-DD), as :func:`day_file` names it."""
        if self._day is None or self._day[0] != day:
            self._day = (day, self.folder / f"{day}.jsonl")
        return self._day[1]

    def check(self) -> None:
        """Refuse, before anything changes, a trail whose folder or today's file is a
        symlink (:class:`UnsafeAuditPath`)."""
        check_audit_path(self.folder, folder=True)
        check_audit_path(day_file(self.folder, self._clock()), folder=False)

    def append(self, path: Path, line: dict) -> None:
        data = (json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        with self._lock:
            folder_fd = self._open_folder()
            try:
                fd, created = self._open_day_file(path, folder_fd)
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
                        os.fsync(folder_fd)
            finally:
                os.close(folder_fd)
            self.touched.add(path)

    def _open_folder(self) -> int:
        """The audit folder, opened without following a symlink (made when missing)."""
        try:
            return self._open_folder_once()
        except FileNotFoundError:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(self.folder)
            except FileExistsError:  # made meanwhile (by another writer, or planted)
                pass
            else:
                fsync_dir(self.folder.parent)
        return self._open_folder_once()

    def _open_folder_once(self) -> int:
        try:
            return os.open(self.folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                check_audit_path(self.folder, folder=True)
            raise

    def _open_day_file(self, path: Path, folder_fd: int) -> tuple[int, bool]:
        """``(fd, created)`` of the day file ``path``, opened inside ``folder_fd`` without
        following a symlink; anything but a regular file is refused."""
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | _NOFOLLOW | os.O_NONBLOCK
        created = False
        for attempt in range(3):  # (a file removed and made again each time: give up)
            try:  # the file is there for every line but the day's first
                fd = os.open(path.name, flags, dir_fd=folder_fd)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise UnsafeAuditPath(path, "file is a symlink") from None
                raise
            try:
                fd = os.open(path.name, flags | os.O_CREAT | os.O_EXCL, 0o644,
                             dir_fd=folder_fd)
                created = True
                break
            except FileExistsError:  # made meanwhile by another writer: open that one
                continue
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeAuditPath(path, "file is not a regular file")
        return fd, created

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
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW)
                except OSError as error:
                    if error.errno == errno.ELOOP:  # replaced by a link since it was written
                        raise UnsafeAuditPath(path, "file is a symlink") from None
                    raise
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
    """``(YYYY-MM-DD, path)`` of every day file under ``folder``, oldest first; a
    symlinked folder is refused (:class:`UnsafeAuditPath`), a symlinked file left out."""
    check_audit_path(folder, folder=True)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = DAY_FILE.match(name)
        if match and stat.S_ISREG(_lstat_mode(Path(folder) / name)):
            found.append((match.group(1), Path(folder) / name))
    return sorted(found)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0
