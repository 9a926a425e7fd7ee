"""The storage protocol: a handful of primitives every backend implements.

Keys are relative to the store's root (a folder, or a bucket and prefix), for example
``archive/logs/2025/01/123/build.log.gz``. Checksums are lowercase SHA-256 hex digests of
the stored bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

PutOutcome = Literal["created", "exists", "replaced"]
_META_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None
    # What the writer said about the object (lowercase names, ASCII values), and when it
    # was last written (POSIX seconds); either may be unknown for objects others wrote.
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)
    modified: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AbandonedUpload:
    """What an upload that never finished left in the store (a killed process, a server
    that went away): a temp file of a ``file://`` store, an incomplete S3 multipart upload.

    Stores that can leave such things have ``abandoned_uploads()`` and
    ``discard(abandoned)`` beside the primitives below.
    """

    kind: Literal["store_temp", "multipart"]
    location: str          # where it is, for people: a path or a URL
    started: float | None  # POSIX seconds
    size: int
    removable: bool        # its writer is known to be gone (else only its age can tell)
    handle: tuple = field(default=(), compare=False)  # what ``discard`` needs


class Store(Protocol):
    """What the archive needs from a place that keeps objects."""

    url: str

    def put(self, key: str, path: Path, *, sha256: str, size: int, overwrite: bool = False,
            metadata: Mapping[str, str] | None = None) -> PutOutcome:
        """Store the file at ``path`` under ``key``, checked against ``sha256``.

        ``metadata`` (lowercase names, ASCII values) is kept with a newly written object
        and returned by :meth:`head`; an object that already matches keeps its own.

        An object already at ``key`` with the same size and checksum counts as stored
        (``"exists"``). A different object there raises ``StorageConflictError`` unless
        ``overwrite`` is true (``"replaced"``). Bytes that do not match ``sha256`` are
        never left at ``key`` (``ChecksumMismatchError``).
        """

    def get(self, key: str, dest: Path) -> None:
        """Download ``key`` to ``dest`` (written whole or not at all)."""

    def head(self, key: str) -> ObjectInfo | None:
        """Size, checksum, metadata and time of the object at ``key``, or None."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (size and time; no checksum)."""

    def list_folders(self, prefix: str) -> list[str]:
        """The names of the folders one level below ``prefix`` (``""`` or ending in
        ``/``), sorted: what a lookup walks instead of listing every key below."""

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    def url_for(self, key: str) -> str:
        """The ``cloud_url`` of ``key`` (``file://...``, ``s3://...``, ``r2://...``)."""

    def public_url_for(self, key: str) -> str | None:
        """A URL a browser can open, when the configuration names a public base URL."""


def verify(store: Store, key: str, *, sha256: str, size: int) -> ObjectInfo:
    """Confirm the stored object has the expected size and checksum, or raise."""
    from log_archiver.errors import ChecksumMismatchError, StorageNotFoundError

    info = store.head(key)
    if info is None:
        raise StorageNotFoundError(
            f"stored object {store.url_for(key)!s} is missing",
            "run `retry-failed-uploads ISSUE --execute` to upload it again",
        )
    if info.size != size or (info.sha256 is not None and info.sha256 != sha256):
        raise ChecksumMismatchError(
            f"stored object {store.url_for(key)} does not match: size {info.size} "
            f"sha256 {info.sha256}, expected size {size} sha256 {sha256}",
            "the local copy is kept; re-upload it with `log-archiver archive ISSUE --force`",
        )
    if info.sha256 is None:
        raise ChecksumMismatchError(
            f"stored object {store.url_for(key)} has no checksum to verify",
            "re-upload it with `log-archiver archive ISSUE --force` so its SHA-256 is recorded",
        )
    return info


def check_folder_prefix(prefix: str) -> None:
    """A prefix :meth:`Store.list_folders` accepts: empty, or clean folder names each
    followed by ``/``."""
    from log_archiver.errors import UsageError

    parts = prefix.split("/")
    if prefix and (parts[-1] != "" or any(p in ("", ".", "..") for p in parts[:-1])):
        raise UsageError(f"folder prefix {prefix!r} is not clean folder names ending in '/'",
                         "use a prefix like archive/logs/2025/")


def clean_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Object metadata as every store keeps it: lowercase names, printable ASCII values."""
    from log_archiver.errors import UsageError

    clean = {}
    for name, value in (metadata or {}).items():
        name, value = str(name).lower(), str(value)
        if not _META_NAME.fullmatch(name) or not value.isascii() or not value.isprintable():
            raise UsageError(f"object metadata {name}={value!r} is not an ASCII name and value",
                             "percent-encode the value (urllib.parse.quote)")
        clean[name] = value
    return clean
