"""One issue's objects in the store, and what log each holds: the reading half of a reindex.

The objects are found folder by folder (years, then months, then only the issue's own
folder in each month: :func:`log_archiver.model.keys.issue_prefixes`), never by listing the
whole store. Each is described by its metadata when that is believed (its checksum
matches the object, its path is in its type's folder, and the key is one the archive
could have given that file), otherwise by its name and, when compressed, its bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from log_archiver.archive.collect import FoundLog
from log_archiver.model import keys
from log_archiver.model.copies import SUFFIX
from log_archiver.model.issues import prefixed_matches
from log_archiver.model.log_types import FOLDERS
from log_archiver.model.object_metadata import described_log
from log_archiver.storage import ObjectInfo, Store
from log_archiver.storage.verify import proven_head
from log_archiver.util.fsutil import temp_path_for

BY_SUFFIX = {suffix: name for name, suffix in SUFFIX.items()}


def issue_objects(store: Store, issue: int, workers: int
                  ) -> tuple[list[ObjectInfo], list[str]]:
    """Every object under ``archive/logs/*/*/ISSUE/`` with its checksum and metadata, and
    the keys left alone (names no log can have)."""
    found, ignored = [], []
    prefixes = keys.issue_prefixes(store.list_folders, issue)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for listed in pool.map(lambda prefix: list(store.list(prefix)), prefixes):
            for info in listed:
                parsed = keys.parse_key(info.key)
                if parsed is None or parsed.issue != issue:
                    continue  # deeper than the layout: not an object of ours
                (found if _plausible_name(parsed.name) else ignored).append(info.key)
        # a checksum the server did not compute is taken from the bytes read back
        heads = [info for info in pool.map(lambda key: proven_head(store, key), found)
                 if info is not None]
    return heads, ignored


def _plausible_name(name: str) -> bool:
    """A file name a log under the logs dir can have (the key names it there)."""
    return not name.startswith(".") and name.isprintable() and "\\" not in name


def describe(store: Store, info: ObjectInfo, issue: int, local: dict[str, FoundLog],
             scratch: Path) -> dict:
    """The log ``info`` holds: ``type``, ``local_path``, ``original_sha256``,
    ``original_size``, ``compression`` and ``created`` (None when unknown)."""
    described = described_log(info.metadata, info.sha256)
    if described is not None and _fits_key(info.key, described):
        return described
    return _describe_from_name(store, info, issue, local, scratch)


def remote_name(local_name: str, compression: str | None) -> str:
    """The name a log is stored under, before :func:`keys.unique_key` makes it unique."""
    return local_name + SUFFIX.get(compression or "", "")


def _fits_key(key: str, described: dict) -> bool:
    """Metadata names a file the key could have been given for (else it was tampered
    with, or copied from another object): in its type's folder, under a name the key fits."""
    folder, _, leaf = described["local_path"].partition("/")
    return folder == FOLDERS[described["type"]] and keys.is_key_for(
        key, remote_name(leaf, described["compression"]), described["type"])


def _describe_from_name(store: Store, info: ObjectInfo, issue: int,
                        local: dict[str, FoundLog], scratch: Path) -> dict:
    """What an object holds, from its name and, when compressed, its decompressed bytes."""
    name = info.key.rsplit("/", 1)[1]
    base, dot, ext = name.rpartition(".")
    compression = BY_SUFFIX.get(f".{ext}") if dot else None
    if compression is None:
        base = name
    log_type, path = _owner(base, issue, local)
    original = (info.sha256, info.size)
    if compression is not None:
        unpacked = unpacked_digest(store, info, compression, scratch)
        if unpacked is None:  # not really compressed: a log stored as it is
            compression, log_type, path = None, *_owner(name, issue, local)
        else:
            original = unpacked
    return {"type": log_type, "local_path": path, "original_sha256": original[0],
            "original_size": original[1], "compression": compression, "created": None}


def _owner(name: str, issue: int, local: dict[str, FoundLog]) -> tuple[str, str]:
    """The type and local path of the log stored as ``name`` (maybe ``TYPE-name``)."""
    for found in local.values():
        leaf = found.relative.rsplit("/", 1)[1]
        if name in (leaf, f"{found.type}-{leaf}"):
            return found.type, found.relative
    for log_type in ("build", "deployment", "debug"):
        rest = name.removeprefix(f"{log_type}-")
        if rest != name and prefixed_matches(rest, issue):
            return log_type, f"{FOLDERS[log_type]}/{rest}"
    if name.startswith("session-session-"):
        return "session", f"sessions/{name.removeprefix('session-')}"
    if prefixed_matches(name, issue):
        log_type = "deployment" if "deploy" in name else "debug" if "debug" in name else "build"
        return log_type, f"{FOLDERS[log_type]}/{name}"
    return "session", f"sessions/{name}"


def unpacked_digest(store: Store, info: ObjectInfo, compression: str,
                     scratch: Path) -> tuple[str, int] | None:
    """SHA-256 and size of the decompressed object, or None if it does not decompress."""
    temp = temp_path_for(scratch / ".reindex")
    try:
        store.get(info.key, temp)
        return _decompressed_digest(temp, compression)
    finally:
        _remove(temp)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _decompressed_digest(path: Path, compression: str) -> tuple[str, int] | None:
    import zlib

    import zstandard

    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as raw:
            if compression == "gzip":
                reader = gzip.GzipFile(fileobj=raw)
            else:
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader:
                while block := reader.read(1 << 20):
                    digest.update(block)
                    size += len(block)
    except (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError):
        return None
    return digest.hexdigest(), size
