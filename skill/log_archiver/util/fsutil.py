"""Durable file writes: temp file in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from log_archiver.errors import LocalFileError

TEMP_SUFFIX = ".tmp"
TEMP_MARKER = ".la-"


def temp_path_for(path: Path) -> Path:
    """A temp name beside ``path`` that every scan of ours recognises and skips."""
    tag = f"{os.getpid()}-{os.urandom(4).hex()}"  # (secrets would import random)
    return path.with_name(f"{path.name}{TEMP_MARKER}{tag}{TEMP_SUFFIX}")


def stale_temp(name: str) -> bool:
    """A temp file of ours whose writing process is gone (killed half way)."""
    if TEMP_MARKER not in name or not name.endswith(TEMP_SUFFIX):
        return False
    try:
        pid = int(name.rsplit(TEMP_MARKER, 1)[1].split("-", 1)[0])
    except ValueError:
        return False
    return process_gone(pid)


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs (one of another user's, or this one, counts as running)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive under another user / not a pid at all
        return False
    return False


def remove_stale_temps_in(folder: Path, prefix: str = "") -> list[str]:
    """Delete the temp files in ``folder`` (names starting ``prefix``) of dead processes."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name.startswith(prefix) and stale_temp(entry.name):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(entry.name)
    return removed


def is_temp_name(name: str) -> bool:
    return name.endswith((".tmp", ".part", ".lock")) or TEMP_MARKER in name


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def local_error(error: OSError, action: str, path: Path | str) -> LocalFileError:
    """A clear error for a failed local read or write, keeping the OSError as cause."""
    if error.errno == errno.ENOSPC:
        hint = f"free disk space on the device holding {path} and run the command again"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"make {path} writable for this user, or point the setting at another place"
    else:
        hint = "check the path and run the command again"
    err = LocalFileError(f"cannot {action} {path}: {error.strerror or error}", hint)
    err.__cause__ = error
    return err


@contextmanager
def atomic_writer(path: Path, *, durable: bool = True,
                  buffering: int = -1) -> Iterator[io.BufferedIOBase]:
    """Write ``path`` whole or not at all; the temp file never outlives a failure.

    ``durable=False`` skips the fsyncs, for files that are only a cache.
    """
    temp = temp_path_for(path)
    try:
        with open(temp, "xb", buffering=buffering) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException as error:
        try:
            temp.unlink()
        except OSError:  # gone already, or the folder became read-only: the cause matters
            pass
        if isinstance(error, OSError):
            raise local_error(error, "write", path) from error
        raise


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as handle:
        handle.write(data)


def write_parts_atomic(path: Path, parts: list[bytes]) -> None:
    """``write_bytes_atomic`` of the pieces joined, without joining them in memory."""
    with atomic_writer(path, buffering=1 << 20) as handle:
        handle.writelines(parts)
