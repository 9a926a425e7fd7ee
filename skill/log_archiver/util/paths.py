"""The one check for a path read from the index, a plan or metadata: it must name a
place inside the logs dir.

Such a path is relative to the logs dir. It is refused when it is absolute, when any
part of it is ``..`` (or empty), when it holds a NUL byte or a backslash, and when,
resolved (symlinks followed), it leads out of the logs dir.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from stat import S_ISLNK

from log_archiver.errors import IndexCorruptError


class UnsafePath(ValueError):
    """A path that does not stay inside the logs dir; ``reason`` says why."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path!r} {reason}")
        self.path = path
        self.reason = reason


def confined(logs_dir: Path, relative) -> Path:
    """``logs_dir / relative`` (not resolved: a symlink stays the link) once ``relative``
    is known to stay inside ``logs_dir``; else :class:`UnsafePath`."""
    if not isinstance(relative, str) or not relative:
        raise UnsafePath(relative, "is not a path relative to the logs dir")
    if "\x00" in relative or "\\" in relative:
        raise UnsafePath(relative, "holds a NUL byte or a backslash")
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        raise UnsafePath(relative, "is absolute; paths are relative to the logs dir")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(relative, "has an empty, '.' or '..' part")
    path = Path(logs_dir) / relative
    if _no_link_below(os.fspath(logs_dir), parts):
        return path  # no symlink and no '..' under the logs dir: it cannot lead out
    root = Path(os.path.realpath(logs_dir))
    real = Path(os.path.realpath(path))
    if real != root and not real.is_relative_to(root):
        raise UnsafePath(relative, f"leads out of the logs dir to {real} (through a symlink)")
    return path


def _no_link_below(logs_dir: str, parts: list[str]) -> bool:
    """Whether no existing part of ``logs_dir/parts...`` below the logs dir is a symlink
    (one lstat a part, where resolving the whole path walks the logs dir's own parents
    each time; what does not exist cannot lead anywhere)."""
    here = logs_dir
    for part in parts:
        here = os.path.join(here, part)
        try:
            if S_ISLNK(os.lstat(here).st_mode):
                return False
        except FileNotFoundError:
            return True
        except OSError:  # (a part that is a file, say): the full check decides
            return False
    return True


def check_entry_paths(entry: dict, logs_dir: Path, *, source: str = "the archive index") -> None:
    """Refuse (before anything is read or deleted) an entry whose logs name a local path
    outside the logs dir: :class:`IndexCorruptError` naming the path and the entry."""
    issue = entry.get("issue_number")
    for log in entry.get("logs", []):
        for name in ("local_path", "stored_path"):
            try:
                confined(logs_dir, log.get(name))
            except UnsafePath as error:
                raise IndexCorruptError(
                    f"issue {issue}'s log {log.get('local_path')!r} in {source}: {name} "
                    f"{error.path!r} {error.reason}; nothing was read or deleted",
                    f"fix that entry (`update-index {issue} METADATA` with paths relative to "
                    f"the logs dir), or rebuild it with `log-archiver archive {issue} "
                    "--reindex-only`") from None
