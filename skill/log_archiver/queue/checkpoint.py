"""A batch's checkpoint: what a killed batch had learned, so a rerun does not ask again.

``<index>.batch`` beside the archive index (``init`` git-ignores it), written whole or not
at all after each issue, removed when the batch ends. It holds the batch's key (its
issues or ``--all-closed`` and its options, and the reason), the issues it planned, the
issues it skipped and why, what GitHub said about each issue, and each finished issue's
status. The index stays the truth: an issue the checkpoint calls finished is skipped only
while the index agrees (its entry is archived whole).

Read back, the file is hostile: anything but a regular file of sane size holding exactly
the shape below is ignored with a warning (and replaced), never trusted in part.

One batch at a time per index: :meth:`Checkpoint.load` first takes ``<index>.batch.lock``
(an ``flock(2)`` lock, which the kernel drops when the holder ends, however it ends), and
:meth:`Checkpoint.remove` gives it back. A second batch in the same repository does not
wait: it stops with :class:`BatchLockedError` before it asks GitHub anything or touches
the checkpoint. The lock file names its holder (pid, start time, batch) for that message.
"""

from __future__ import annotations

import errno
import os
import stat
import weakref
from pathlib import Path

from log_archiver.errors import ArchiveError, LocalFileError
from log_archiver.model.issues import MAX_ISSUE
from log_archiver.util.clock import now_iso
from log_archiver.util.fsutil import local_error, write_bytes_atomic

KIND = "log-archiver batch checkpoint"
SUFFIX = ".batch"
LOCK_SUFFIX = ".lock"
MAX_HOLDER = 1024
MAX_BYTES = 32 << 20
MAX_TEXT = 4096
STATUSES = ("ok", "noop", "partial", "error", "skipped")
INFO_TEXT = ("title", "url", "state", "closed_at")


def checkpoint_path(index_path: Path) -> Path:
    index_path = Path(index_path)
    return index_path.with_name(index_path.name + SUFFIX)


class BatchLockedError(ArchiveError):
    """Another batch of the same index is running: its checkpoint is left alone."""

    type = "batch_locked"
    retryable = True


def lock_path_for(checkpoint: Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + LOCK_SUFFIX)


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says (hostile: bounded, printable only)."""
    try:
        raw = os.pread(fd, MAX_HOLDER, 0)
    except OSError:
        return "an unknown process"
    text = "".join(ch if ch.isprintable() else "?" for ch in raw.decode("utf-8", "replace"))
    return text.strip()[:300] or "a process that has not said who it is yet"


def _open_lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise LocalFileError(
                f"batch lock {str(path)!r} is a symlink; it was not followed and no batch ran",
                f"remove {path} (it is only a lock) and run the command again") from None
        raise local_error(error, "open the batch lock", path) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LocalFileError(f"batch lock {str(path)!r} is not a regular file; no batch ran",
                             f"remove {path} (it is only a lock) and run the command again")
    return fd


def acquire_batch_lock(path: Path, checkpoint: Path, key: str) -> int:
    """The descriptor holding the batch lock ``path``; :class:`BatchLockedError` when
    another live process holds it."""
    import fcntl

    for _attempt in range(10):
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(fd)
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise local_error(error, "lock", path) from error
            raise BatchLockedError(
                f"another batch is archiving with this index: {path} is held by {holder}; "
                f"its checkpoint {checkpoint} was left alone and nothing was done",
                "wait for that batch to end (it gives the lock back, also when it is killed) "
                "and run the command again; do not delete the lock or the checkpoint while "
                "it runs") from None
        try:
            same = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            same = None
        mine = os.fstat(fd)
        if same is not None and (same.st_dev, same.st_ino) == (mine.st_dev, mine.st_ino):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, since {now_iso()}, batch {key}"
                          .encode()[:MAX_HOLDER], 0)
            return fd
        os.close(fd)  # the holder removed the file as we took it: lock the new one
    raise BatchLockedError(f"batch lock {path} kept changing under this run; nothing was done",
                           "run the command again")


def _release(path: Path, fd: int) -> None:
    """Remove the lock file (while still holding it, so nobody else holds this one), then
    let go of it."""
    try:
        same = os.stat(path, follow_symlinks=False)
        mine = os.fstat(fd)
        if (same.st_dev, same.st_ino) == (mine.st_dev, mine.st_ino):
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _issue(value) -> int | None:
    """An issue number from the file, or None when it is not one."""
    if isinstance(value, str) and value.isdigit() and not value.startswith("0"):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ISSUE:
        return value
    return None


def _text(value, *, nullable: bool = True) -> bool:
    return (value is None and nullable) or (isinstance(value, str) and len(value) <= MAX_TEXT)


def _valid_info(info) -> bool:
    return (isinstance(info, dict)
            and set(info) <= {*INFO_TEXT, "closed", "is_pull_request"}
            and all(_text(info.get(key)) for key in INFO_TEXT)
            and isinstance(info.get("closed"), bool)
            and isinstance(info.get("is_pull_request", False), bool))


def _problem(data) -> str | None:
    """What is wrong with a checkpoint's content, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    expected = {"kind", "version", "key", "started_at", "planned", "skipped", "github", "done"}
    if set(data) != expected:
        return f"fields {sorted(set(data) ^ expected)} are unexpected or missing"
    if data["kind"] != KIND or data["version"] != 1:
        return "not a version 1 checkpoint"
    if not _text(data["key"], nullable=False) or not _text(data["started_at"], nullable=False):
        return "key or started_at is not a short string"
    planned = data["planned"]
    if not isinstance(planned, list) or any(_issue(n) is None or isinstance(n, str)
                                            for n in planned) or len(set(planned)) != len(planned):
        return "planned is not a list of distinct issue numbers"
    skipped = data["skipped"]
    if not isinstance(skipped, list) or not all(
            isinstance(s, dict) and set(s) == {"issue_number", "reason"}
            and _issue(s["issue_number"]) is not None and not isinstance(s["issue_number"], str)
            and _text(s["reason"], nullable=False) for s in skipped):
        return "skipped is not a list of {issue_number, reason}"
    github = data["github"]
    if not isinstance(github, dict) or not all(_issue(k) is not None and _valid_info(v)
                                               for k, v in github.items()):
        return "github is not a map of issue numbers to what GitHub said"
    done = data["done"]
    if not isinstance(done, dict) or not all(_issue(k) is not None and v in STATUSES
                                             for k, v in done.items()):
        return "done is not a map of issue numbers to statuses"
    if not {int(k) for k in done} <= set(planned):
        return "done names issues the batch did not plan"
    return None


class Checkpoint:
    """The checkpoint of one batch (``key``); :meth:`load` picks up a killed run's."""

    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key
        self.started_at = now_iso()
        self.planned: list[int] = []
        self.skipped: list[dict] = []
        self.github: dict[int, dict] = {}
        self.done: dict[int, str] = {}
        self.resumed = False
        self.lock_path = lock_path_for(self.path)
        self._lock: weakref.finalize | None = None

    def lock(self) -> None:
        """Take the batch lock (once); :class:`BatchLockedError` when another batch runs.
        Given back by :meth:`remove`, or when this object goes (the batch failed)."""
        if self._lock is None or not self._lock.alive:
            fd = acquire_batch_lock(self.lock_path, self.path, self.key)
            self._lock = weakref.finalize(self, _release, self.lock_path, fd)

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock()

    @property
    def has_plan(self) -> bool:
        return self.resumed and bool(self.planned or self.skipped)

    def load(self) -> str | None:
        """Take up the state of an earlier run of the same batch. Returns a warning when a
        file was there but could not be used (corrupt, another batch's), else None.
        Takes the batch lock first (:meth:`lock`)."""
        self.lock()
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as error:
            return self._ignored(f"it cannot be opened as a regular file ({error.strerror})")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return self._ignored("it is not a regular file")
            if info.st_size > MAX_BYTES:
                return self._ignored(f"it holds {info.st_size} bytes, more than a checkpoint "
                                     f"may ({MAX_BYTES})")
            with os.fdopen(fd, "rb") as handle:
                fd = -1
                raw = handle.read(MAX_BYTES + 1)
        finally:
            if fd >= 0:
                os.close(fd)
        from log_archiver.util.strict_json import loads

        try:
            data = loads(raw)
        except ValueError as error:
            return self._ignored(f"it is not valid JSON ({error})")
        problem = _problem(data)
        if problem is not None:
            return self._ignored(problem)
        if data["key"] != self.key:
            return self._ignored(f"it belongs to another batch ({data['key'][:200]!r})")
        self.started_at = data["started_at"]
        self.planned = list(data["planned"])
        self.skipped = [dict(s) for s in data["skipped"]]
        self.github = {int(k): dict(v) for k, v in data["github"].items()}
        self.done = {int(k): v for k, v in data["done"].items()}
        self.resumed = True
        return None

    def _ignored(self, why: str) -> str:
        return (f"batch checkpoint {self.path} ignored: {why}; the index decides what is "
                "already archived, and the file is replaced")

    def save(self, *, durable: bool = True) -> None:
        import orjson  # (json's indenting encoder is pure Python: slow after every issue)

        self.lock()
        document = {"kind": KIND, "version": 1, "key": self.key, "started_at": self.started_at,
                    "planned": self.planned, "skipped": self.skipped,
                    "github": {str(k): v for k, v in sorted(self.github.items())},
                    "done": {str(k): v for k, v in sorted(self.done.items())}}
        write_bytes_atomic(self.path, orjson.dumps(document, option=orjson.OPT_INDENT_2),
                           durable=durable)

    def finish(self, finished: dict[int, str]) -> None:
        """Record the status of each issue of ``finished``, in one write. Not synced: the
        index, synced before, already says they are archived (a finish lost in a crash
        only costs the rerun a look at the index)."""
        if finished:
            self.done.update(finished)
            self.save(durable=False)

    def remove(self) -> None:
        """The batch is over: remove the checkpoint and give the lock back."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            self.unlock()
