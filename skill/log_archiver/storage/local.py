"""``file:///path``: a local folder as the store (the default; no account needed).

Key ``K`` lives at ``ROOT/K``. Everything of the store's own stays under
``ROOT/.log-archiver/`` so the root holds the archived objects and nothing else: temp
files, and the sidecars of :mod:`.descriptions`. Each object carries its description
(the key, the caller's metadata, and the SHA-256 computed while it was written, with its
size and modification time then): ``head`` returns that checksum while they still match,
so a HEAD never reads the object. A description describes; it proves nothing (it can be
edited, or outlive the bytes it was written for): :mod:`log_archiver.storage.verify`
reads the object back before a delete.

A temp file is named ``PID-HEX`` after the process writing it. One whose process is gone
(killed mid-upload) is removed before this process first writes to the store, and
reported by ``cleanup-local --orphans``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_module
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

from log_archiver.errors import (
    ChecksumMismatchError,
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    UsageError,
)
from log_archiver.storage.base import (
    AbandonedUpload,
    Capabilities,
    ObjectInfo,
    PutOutcome,
    check_folder_prefix,
    check_range,
    clean_metadata,
)
from log_archiver.storage.descriptions import OWN_DIR, Descriptions
from log_archiver.storage.local_files import not_a_file, open_folder, open_object
from log_archiver.util.fsutil import process_gone
from log_archiver.util.hashing import file_identity, remember_bounded

BLOCK = 1 << 20
_swept_roots: set[Path] = set()  # stores whose dead temp files this process removed
_sweep_lock = threading.Lock()


def _writer_gone(name: str) -> bool:
    """Whether the temp file ``name`` (``PID-HEX``) belongs to a process no longer running."""
    pid_text, _, tag = name.partition("-")
    return bool(pid_text.isdigit() and tag) and process_gone(int(pid_text))


class LocalStore:
    capabilities = Capabilities(conditional_writes=True, abandoned_uploads=True,
                                checked_writes=True)

    def __init__(self, root: Path, public_base_url: str | None = None):
        self.root = Path(root)
        self.url = f"file://{quote(str(self.root))}"
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._written: dict[str, tuple] = {}  # key: identity of the file this process wrote
        self._descriptions = Descriptions(self.root)
        self._written_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*self._parts(key))

    @staticmethod
    def _parts(key: str) -> list[str]:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) \
                or parts[0] == OWN_DIR:
            raise UsageError(f"storage key {key!r} is not a clean relative path",
                             "use keys like archive/logs/2025/01/123/build.log")
        return parts

    def _temp_dir(self) -> Path:
        folder = self.root / OWN_DIR / "tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _storage_error(error, "create", folder) from error
        return folder

    def _sweep_once(self) -> None:
        """Remove what killed writers left in the temp folder, once a process per store."""
        with _sweep_lock:
            if self.root in _swept_roots:
                return
            _swept_roots.add(self.root)
        try:
            abandoned_uploads = self.abandoned_uploads()
        except StorageError:
            return  # (another user's folder, say): cleanup-local --orphans reports it
        for abandoned in abandoned_uploads:
            if abandoned.removable:
                try:
                    self.discard(abandoned)
                except StorageError:
                    pass  # best effort: cleanup-local --orphans reports what stays

    def abandoned_uploads(self) -> list[AbandonedUpload]:
        """The temp files of unfinished writes (``removable`` when their process is gone)."""
        folder = self.root / OWN_DIR / "tmp"
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            raise _storage_error(error, "read", folder) from error
        found = []
        for entry in entries:
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append(AbandonedUpload("store_temp", entry.path, stat.st_mtime, stat.st_size,
                                         _writer_gone(entry.name),
                                         (entry.path, stat.st_ino, stat.st_mtime_ns)))
        return found

    def discard(self, abandoned: AbandonedUpload) -> None:
        """Remove one abandoned temp file, unless it changed since it was listed."""
        path, inode, mtime_ns = abandoned.handle
        try:
            stat = os.lstat(path)
            if (stat.st_ino, stat.st_mtime_ns) == (inode, mtime_ns):
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _storage_error(error, "delete", Path(path)) from error

    @staticmethod
    def _hash_to(source: Path | int, out=None) -> tuple[int, str]:
        """Hash ``source`` (a path, or a descriptor it takes over), copying it to ``out``
        (an open binary file, synced) if given."""
        digest, size = hashlib.sha256(), 0
        with open(source, "rb") as handle:
            while block := handle.read(BLOCK):
                digest.update(block)
                size += len(block)
                if out is not None:
                    out.write(block)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
        return size, digest.hexdigest()

    def _hash_object(self, key: str, out=None) -> tuple[int, str]:
        return self._hash_to(open_object(self._path(key)), out)

    def put(self, key: str, path: Path, *, sha256: str, size: int, overwrite: bool = False,
            metadata: Mapping[str, str] | None = None) -> PutOutcome:
        target = self._path(key)
        clean_metadata(metadata)  # refused before anything is written
        existing = self._known(key)
        if existing is not None:
            if existing.size == size and existing.sha256 == sha256:
                return "exists"
            if not overwrite:
                raise _conflict(self.url_for(key), existing, sha256)
        self._sweep_once()
        temp = self._temp_dir() / f"{os.getpid()}-{os.urandom(6).hex()}"
        folder = None
        try:
            parts = self._parts(key)
            folder = open_folder(self.root, parts[:-1], create=True)
            # Written, described and stamped through the descriptor: the name is only
            # used to link it, and whatever is linked is checked to be this very file.
            with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                                   | getattr(os, "O_NOFOLLOW", 0), 0o666), "wb") as out:
                written_size, written = self._hash_to(Path(path), out)
                if written != sha256 or written_size != size:
                    raise ChecksumMismatchError(
                        f"bytes read from {path} do not match sha256 {sha256} (got {written})",
                        "the local file changed since it was prepared; run prepare-upload "
                        "again")
                on_object = self._descriptions.write(key, out.fileno(), sha256, metadata)
                mine = os.fstat(out.fileno())
            if overwrite and existing is not None:
                os.replace(temp, parts[-1], dst_dir_fd=folder)
                outcome: PutOutcome = "replaced"
            else:
                # link() fails if the key appeared meanwhile: a conditional write.
                try:
                    os.link(temp, parts[-1], dst_dir_fd=folder)
                except FileExistsError:
                    return self._settle_race(key, sha256, size)
                outcome = "created"
            os.fsync(folder)
            temp.unlink(missing_ok=True)  # (before the stat: dropping a link changes ctime)
            now = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
                raise StorageError(
                    f"{target} is not the file this process wrote: the store's temp file "
                    "was replaced while it was written",
                    f"let no one else write in {self.root / OWN_DIR}, then run again")
            if on_object:
                self._descriptions.drop_sidecars(key)
            else:
                self._descriptions.drop_old(key)
            with self._written_lock:
                remember_bounded(self._written, key, file_identity(now))
            return outcome
        except FileNotFoundError as error:
            if not Path(path).exists():
                raise StorageNotFoundError(f"local file {path} to upload is missing",
                                           "run collect-logs and prepare-upload again") from error
            raise _storage_error(error, "write", target) from error
        except OSError as error:
            raise _storage_error(error, "write", target) from error
        finally:
            temp.unlink(missing_ok=True)
            if folder is not None:
                os.close(folder)

    def _known(self, key: str) -> ObjectInfo | None:
        """``head``, hashing the object only when no sidecar vouches for its checksum (an
        object written by others, or changed since): deciding "exists" needs the truth."""
        info = self.head(key)
        if info is None or info.sha256 is not None:
            return info
        try:
            size, sha256 = self._hash_object(key)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _storage_error(error, "read", self._path(key)) from error
        return ObjectInfo(key, size, sha256, metadata=info.metadata, modified=info.modified)

    def _settle_race(self, key: str, sha256: str, size: int) -> PutOutcome:
        existing = self._known(key)
        if existing is not None and existing.size == size and existing.sha256 == sha256:
            return "exists"
        raise _conflict(self.url_for(key), existing, sha256)

    def get(self, key: str, dest: Path) -> None:
        source, dest = self._path(key), Path(dest)
        # Not named after dest: a name of 255 bytes leaves no room for a suffix.
        temp = dest.with_name(f".la-get-{os.getpid()}-{os.urandom(4).hex()}.part")
        expected = self._descriptions.read(key, source)[1].get("sha256")
        try:
            try:
                with open(temp, "wb") as out:
                    size, sha256 = self._hash_object(key, out)
            except FileNotFoundError as error:
                if not source.exists():
                    raise StorageNotFoundError(f"no stored object {self.url_for(key)}",
                                               "check the key with `log-archiver read`") from error
                raise _storage_error(error, "write", dest) from error
            except OSError as error:
                raise _storage_error(error, "read", source) from error
            if expected is not None and sha256 != expected:
                raise ChecksumMismatchError(
                    f"{self.url_for(key)} read back as {size} bytes sha256 {sha256}, but it "
                    f"was stored with sha256 {expected}",
                    "the stored object is damaged; re-upload it from a local copy with "
                    "`log-archiver archive ISSUE --force`")
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    def digest(self, key: str) -> tuple[int, str]:
        source = self._path(key)
        try:
            return self._hash_object(key)
        except FileNotFoundError as error:
            raise StorageNotFoundError(f"no stored object {self.url_for(key)}",
                                       "check the key with `log-archiver read`") from error
        except OSError as error:
            raise _storage_error(error, "read", source) from error

    def get_range(self, key: str, start: int, length: int) -> bytes:
        check_range(start, length)
        source = self._path(key)
        try:
            with open(open_object(source), "rb") as handle:
                handle.seek(start)
                return handle.read(length)
        except FileNotFoundError as error:
            raise StorageNotFoundError(f"no stored object {self.url_for(key)}",
                                       "check the key with `log-archiver read`") from error
        except OSError as error:
            raise _storage_error(error, "read", source) from error

    def head(self, key: str) -> ObjectInfo | None:
        target = self._path(key)
        try:
            stat = target.lstat()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _storage_error(error, "read", target) from error
        if not stat_module.S_ISREG(stat.st_mode):
            raise not_a_file(target)
        metadata, written = self._descriptions.read(key, target)
        stamp = (written.get("size"), written.get("inode", stat.st_ino), written.get("mtime_ns"))
        sha256 = written.get("sha256") \
            if stamp == (stat.st_size, stat.st_ino, stat.st_mtime_ns) else None
        sha256 = sha256 if isinstance(sha256, str) else None
        return ObjectInfo(key, stat.st_size, sha256, metadata=metadata, modified=stat.st_mtime,
                          written_here=sha256 is not None
                          and self._written.get(key) == file_identity(stat))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the deepest folder the prefix names, not the whole store.
        parts = prefix.split("/")[:-1]
        start = self.root
        if parts and parts[0] != OWN_DIR and not any(p in ("", ".", "..") for p in parts):
            start = self.root.joinpath(*parts)
            try:  # (a walk follows its start: never a link out of the store)
                os.close(open_folder(self.root, parts))
            except (FileNotFoundError, NotADirectoryError):
                return
            except OSError as error:
                raise _storage_error(error, "list", start) from error
        def unreadable(error: OSError) -> None:  # a folder we cannot read is no empty one
            if not isinstance(error, FileNotFoundError):
                raise _storage_error(error, "list", Path(error.filename or start)) from error

        for folder, dirs, files in os.walk(start, onerror=unreadable):
            here = Path(folder)
            if here == self.root:
                dirs[:] = [d for d in dirs if d != OWN_DIR]
            dirs.sort()
            for name in sorted(files):
                key = (here / name).relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    stat = (here / name).lstat()
                except FileNotFoundError:
                    continue  # removed while listed
                if stat_module.S_ISREG(stat.st_mode):  # a symlink or FIFO is no object of ours
                    yield ObjectInfo(key, stat.st_size, None, modified=stat.st_mtime)

    def list_folders(self, prefix: str) -> list[str]:
        check_folder_prefix(prefix)
        parts = prefix.split("/")[:-1]
        if parts and parts[0] == OWN_DIR:
            return []
        folder = self.root.joinpath(*parts)
        try:
            with os.scandir(folder) as entries:
                return sorted(entry.name for entry in entries
                              if entry.is_dir(follow_symlinks=False)
                              and not (folder == self.root and entry.name == OWN_DIR))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            raise _storage_error(error, "read", folder) from error

    def delete(self, key: str) -> None:
        parts = self._parts(key)
        try:
            folder = open_folder(self.root, parts[:-1])
        except FileNotFoundError:
            self._descriptions.drop_sidecars(key)
            return
        except OSError as error:
            raise _storage_error(error, "delete", self._path(key)) from error
        try:
            os.unlink(parts[-1], dir_fd=folder)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _storage_error(error, "delete", self._path(key)) from error
        finally:
            os.close(folder)
        self._descriptions.drop_sidecars(key)

    def url_for(self, key: str) -> str:
        return f"{self.url}/{quote(key)}"

    def public_url_for(self, key: str) -> str | None:
        return f"{self.public_base_url}/{quote(key)}" if self.public_base_url else None


def _conflict(url: str, existing: ObjectInfo | None, sha256: str) -> StorageConflictError:
    found = f"sha256 {existing.sha256}" if existing else "another object"
    return StorageConflictError(
        f"{url} already holds a different object ({found}, expected sha256 {sha256})",
        "nothing was overwritten; inspect the stored object, then re-archive with --force "
        "to replace it",
    )


def _storage_error(error: OSError, action: str, path: Path) -> StorageError:
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoragePermissionError(
            f"cannot {action} {path} in the local store: {error.strerror}",
            "make the store folder writable, or set LOG_ARCHIVER_STORAGE to another folder",
        )
    if error.errno == errno.ENOSPC:
        return StorageError(f"no space left to {action} {path}",
                            "free disk space under the store folder and run again")
    return StorageError(f"cannot {action} {path}: {error.strerror or error}",
                        "check the store folder and run again")
