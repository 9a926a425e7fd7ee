"""Reaching the files of a ``file://`` store without being led out of it.

Anyone who can write in the store folder can leave a symlink, a FIFO or a device where
an object or a folder is expected. A write or a delete follows no link below the root
(the root itself may be one): it walks down one folder at a time with ``O_NOFOLLOW`` and
acts on the name inside the last folder it opened. A read opens regular files only,
without blocking: a FIFO would hang it, a device would never end.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from log_archiver.errors import StorageError

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_folder(root: Path, names: list[str], *, create: bool = False) -> int:
    """A descriptor of ``ROOT/names...``, reached without following a symlink below the
    root; with ``create``, missing folders are made. The caller closes it."""
    fd = os.open(root, _FOLDER)
    try:
        for depth, name in enumerate(names):
            try:
                inner = _open_inside(fd, name, create)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise not_a_folder(root.joinpath(*names[:depth + 1])) from error
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_inside(fd: int, name: str, create: bool) -> int:
    try:
        return os.open(name, _FOLDER | _NOFOLLOW, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
    try:
        os.mkdir(name, dir_fd=fd)
    except FileExistsError:
        pass  # made meanwhile by another writer
    return os.open(name, _FOLDER | _NOFOLLOW, dir_fd=fd)


def not_a_folder(path: Path) -> StorageError:
    return StorageError(
        f"{path} in the local store is a symlink or a file, not a folder: the store "
        "follows no link out of its folder",
        f"remove {path} (or move what it points to into the store), then run again")


def not_a_file(path: Path) -> StorageError:
    return StorageError(
        f"{path} in the local store is not a regular file (a symlink, FIFO or device): "
        "it is no stored object",
        f"remove {path}, then run again (an archive uploads its log there again)")


def open_object(path: Path) -> int:
    """A read-only descriptor of the regular file at ``path``, or :func:`not_a_file`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise not_a_file(path) from error
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise not_a_file(path)
    return fd
