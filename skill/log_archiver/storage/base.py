"""The storage protocol: a handful of primitives every backend implements.

Keys are relative to the store's root (a folder, or a bucket and prefix), for example
``archive/logs/2025/01/123/build.log.gz``. Checksums are lowercase SHA-256 hex digests of
the stored bytes.

What a store has beyond the primitives is declared in its :class:`Capabilities`, never
probed: callers look at ``store.capabilities`` before calling an optional method.
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
class Capabilities:
    """What a store offers beyond the primitives of :class:`Store`."""

    # ``head`` can return a SHA-256 the server computed from the bytes it holds (not one
    # the writer sent along as metadata).
    server_checksums: bool = False
    # ``put`` is atomic about "only if nothing is there" (If-None-Match, link()).
    conditional_writes: bool = False
    # ``abandoned_uploads()`` and ``discard(abandoned)`` exist (temp files, multipart).
    abandoned_uploads: bool = False
    # ``read_timeout`` and ``with_timeout(seconds)`` exist: a retry after a timeout can
    # be given a longer one.
    adjustable_timeouts: bool = False
    # ``put`` hashes the bytes it wrote, from where it wrote them, before the object
    # appears, and ``head`` returns that hash only while the object is unchanged: an
    # object this process just put needs no second read to count as verified.
    checked_writes: bool = False
    # ``object_lock_status()`` (whether this bucket has it: ``(enabled, why)``) and
    # ``set_legal_hold(key, on)`` exist: S3 Object Lock legal holds. A store without it
    # (the file store) keeps a hold in the index only.
    object_lock: bool = False


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    # The stored bytes' SHA-256 as the store knows it: the server's own when
    # ``sha256_by_server``, else what was recorded beside the object when it was written
    # (a sidecar, ``x-amz-meta-sha256``), which describes the object but proves nothing.
    sha256: str | None
    # What the writer said about the object (lowercase names, ASCII values), and when it
    # was last written (POSIX seconds); either may be unknown for objects others wrote.
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)
    modified: float | None = field(default=None, compare=False)
    sha256_by_server: bool = field(default=False, compare=False)
    # A multipart object's checksum of part checksums, as the server computed it:
    # ``(base64 digest, part count, part size)``; see :mod:`log_archiver.storage.verify`.
    composite: tuple[str, int, int] | None = field(default=None, compare=False)
    # On a store with ``checked_writes``: this process wrote the object, hashing what it
    # wrote, and the object is still exactly the file it wrote (``sha256`` is that hash).
    written_here: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class AbandonedUpload:
    """What an upload that never finished left in the store (a killed process, a server
    that went away): a temp file of a ``file://`` store, an incomplete S3 multipart upload.

    Stores that can leave such things declare ``Capabilities.abandoned_uploads`` and have
    ``abandoned_uploads()`` and ``discard(abandoned)`` beside the primitives below.
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
    capabilities: Capabilities

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
        """Download ``key`` to ``dest`` (written whole or not at all).

        The bytes are hashed as they arrive and checked against the SHA-256 the store has
        for the object; a mismatch raises ``ChecksumMismatchError`` and leaves no file.
        """

    def digest(self, key: str) -> tuple[int, str]:
        """Size and SHA-256 of the bytes at ``key``, read back whole (nothing is kept)."""

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """The ``length`` bytes of ``key`` from offset ``start`` (fewer at the object's
        end; ``b""`` from its end on). Nothing is verified here: the caller checks the
        bytes against a checksum it trusts (see :mod:`log_archiver.retrieve.content`)."""

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


def check_range(start: int, length: int) -> None:
    """A byte range :meth:`Store.get_range` accepts: a non-negative start and length."""
    from log_archiver.errors import UsageError

    if not (isinstance(start, int) and isinstance(length, int)) or start < 0 or length < 0:
        raise UsageError(f"byte range start={start!r} length={length!r} is not two "
                         "non-negative integers", "ask for a range inside the object")


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
