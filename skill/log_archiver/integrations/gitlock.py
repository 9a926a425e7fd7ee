"""git's ``index.lock``, taken the way git takes it, and recognised again when a run of
ours was killed while holding it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from log_archiver.errors import GitError, GitLockedError


def take_lock(git_dir: Path, lock: Path) -> tuple[int, Path | None]:
    """Take git's ``index.lock`` as git does (create it, or fail when it exists).

    The lock is made as a second name of a file whose name carries our pid, so a run
    killed while holding it is recognised by the next one (see
    :func:`remove_stale_files`), which removes the lock instead of waiting on it.
    """
    owner = git_dir / f"log-archiver-lock-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise GitError(f"cannot write in the git folder {str(git_dir)!r}: {error}",
                       "check the permissions of the .git folder") from error
    try:
        os.link(owner, lock)
    except FileExistsError:
        os.close(fd)
        owner.unlink(missing_ok=True)
        raise _held(lock) from None
    except OSError:  # a file system without hard links: a plain lock, as git takes it
        os.close(fd)
        owner.unlink(missing_ok=True)
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), None
        except FileExistsError:
            raise _held(lock) from None
        except OSError as error:
            raise GitError(f"cannot create git index lock {str(lock)!r}: {error}",
                           "check the permissions of the .git folder") from error
    return fd, owner


def remove_stale_files(git_dir: Path, lock: Path) -> None:
    """Clear what a killed commit step of ours left in the git folder: its scratch
    indexes, and ``index.lock`` when it is that run's lock (same file as its owner
    record). Another process's lock is never touched."""
    from log_archiver.util.fsutil import process_gone

    for path in git_dir.glob("log-archiver-*"):
        parts = path.name.split("-")
        if len(parts) < 4 or parts[2] not in ("lock", "index") or not parts[3].isdigit():
            continue
        if not process_gone(int(parts[3])):
            continue
        if parts[2] == "lock":
            try:
                if os.path.samefile(path, lock):
                    lock.unlink(missing_ok=True)
            except OSError:
                pass
        path.unlink(missing_ok=True)


def _held(lock: Path) -> GitLockedError:
    return GitLockedError(f"git index lock {str(lock)!r} is held by another process",
                          f"wait for the other git command to finish; if none is running, "
                          f"delete {lock} and run `log-archiver commit` again")
