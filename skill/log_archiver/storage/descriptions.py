"""What a ``file://`` store records of each object it writes, and where.

A description holds the key, the caller's metadata and the SHA-256 computed while the
object was written, with its size and modification time then. It is an extended
attribute of the object (``user.log-archiver``), set on the temp file before the file
becomes the object, so the object never appears without it and no other file is made for
it. Where the filesystem keeps no such attribute (or not one that long), it goes to a
sidecar, ``.log-archiver/objects/XX/SHA.json``, named by the SHA-256 of the key (so any
name the filesystem takes as an object's takes a sidecar too), with the object's inode as
well, written before the object appears. Neither is synced to disk: a description lost
in a crash only makes a reindex describe the object from the object itself. Sidecars of
older stores (``meta/K.json``) are still read; they record no stamp, so they never vouch.

Read back, a description is hostile: anything but its exact shape, or one of another key
(a hand-made hard link), is ignored.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from log_archiver.storage.base import clean_metadata
from log_archiver.util.fsutil import write_bytes_atomic

OWN_DIR = ".log-archiver"
XATTR = "user.log-archiver"
MAX_DESCRIPTION = 1 << 20  # a description read back longer than this is ignored


class Descriptions:
    """The descriptions of the objects of the store at ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._on_objects: bool | None = None  # whether the filesystem keeps them on files

    def sidecar_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return self.root / OWN_DIR / "objects" / digest[:2] / f"{digest}.json"

    def _old_path(self, key: str) -> Path:
        """Where stores before named-by-digest sidecars kept them (``meta/K.json``)."""
        return self.root.joinpath(OWN_DIR, "meta", *key.split("/")).with_name(
            key.rsplit("/", 1)[-1] + ".json")

    def drop_old(self, key: str) -> None:
        try:
            self._old_path(key).unlink(missing_ok=True)
        except OSError:
            pass  # never written (a name too long for one, say); a new sidecar wins anyway

    def write(self, key: str, temp: int, sha256: str,
              metadata: Mapping[str, str] | None) -> bool:
        """Like S3's ``x-amz-meta-*``: always the checksum, plus what the caller gave; on
        the temp file about to become the object (``temp``, its descriptor: True), or
        else in a sidecar."""
        written = os.fstat(temp)
        data = {"key": key, "metadata": {**clean_metadata(metadata), "sha256": sha256},
                "sha256": sha256, "size": written.st_size, "mtime_ns": written.st_mtime_ns}
        if self._on_objects is not False:
            try:
                os.setxattr(temp, XATTR, json.dumps(data, sort_keys=True).encode())
                self._on_objects = True
                return True
            except AttributeError:  # (no extended attributes on this system)
                self._on_objects = False
            except OSError as error:
                if error.errno in _NO_ATTRIBUTES:
                    self._on_objects = False
                # else (a description too long for one, say): this object gets a sidecar
        target = self.sidecar_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        data["inode"] = written.st_ino
        # Not synced: metadata lost in a crash only makes a reindex describe the object
        # from the object itself (its checksum is what a reader trusts).
        write_bytes_atomic(target, json.dumps(data, sort_keys=True).encode(), durable=False)
        return False

    def drop_sidecars(self, key: str) -> None:
        """Remove the sidecars once written for ``key`` (an object written there since
        carries its own description, which they must not contradict)."""
        try:
            self.sidecar_path(key).unlink(missing_ok=True)
        except OSError:
            pass  # (a sidecar vouches only for the inode it names: never this object)
        self.drop_old(key)

    def read(self, key: str, path: Path) -> tuple[dict[str, str], dict]:
        """The caller's metadata, and what the store recorded when writing this very file
        (its checksum, with the size and mtime then; {} when nothing was recorded for
        it). ``path``: the object's."""
        data = _attribute(path)
        if not _describes(data, key):
            data = _parsed(_small_file(self.sidecar_path(key)))
            if not (isinstance(data, dict) and data.get("key") == key
                    and isinstance(data.get("metadata"), dict)):
                data = None
            elif data.get("inode") != _inode(path):
                # Written for another file: this one copied (a store restored from a
                # backup), or the sidecar left by a write that lost a race or was killed
                # before its file took the key. It still describes; it vouches for
                # nothing (no checksum is expected of these bytes).
                return {str(k): str(v) for k, v in data["metadata"].items()}, {}
        if data is not None:
            return {str(k): str(v) for k, v in data["metadata"].items()}, data
        old = _parsed(_small_file(self._old_path(key)))
        if old is None:
            return {}, {}
        # An old sidecar records no stamp: it describes the object, it never vouches.
        return ({str(k): str(v) for k, v in old.items()} if isinstance(old, dict) else {}), {}


_NO_ATTRIBUTES = {getattr(errno, name) for name in ("ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EPERM")
                  if hasattr(errno, name)}


def _attribute(path: Path) -> dict | None:
    """The description on the object at ``path`` (hostile until :func:`_describes`)."""
    try:
        return _parsed(os.getxattr(path, XATTR, follow_symlinks=False))
    except (OSError, AttributeError):
        return None


def _small_file(path: Path) -> bytes | None:
    """The bytes of the regular file at ``path`` (a symlink, FIFO or device is none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_DESCRIPTION + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _parsed(raw: bytes | None):
    if raw is None or len(raw) > MAX_DESCRIPTION:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # (nested deep enough to exhaust the stack)
        return None


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _describes(data, key: str) -> bool:
    """Whether ``data`` is a description of the object at ``key``, in its shape."""
    return isinstance(data, dict) and data.get("key") == key \
        and isinstance(data.get("metadata"), dict) and isinstance(data.get("sha256"), str) \
        and isinstance(data.get("size"), int) and isinstance(data.get("mtime_ns"), int)
