"""Verification: proving that a stored object holds the bytes an index record says.

A HEAD is cheap and says what the store has recorded about an object, but a checksum
the writer sent along (``x-amz-meta-sha256``, a ``file://`` sidecar) is only a claim: a
client that replaced the object may have copied it, a server may keep nothing and echo
what it was sent. Before a local copy is deleted the proof is one of:

1. a full-object SHA-256 the server computed (``ObjectInfo.sha256_by_server``);
2. a multipart object's composite checksum, which the server computed from the part
   checksums it checked, recomputed here from the local file cut at the same part size;
3. the bytes read back from the store and hashed;
4. on a store with ``checked_writes`` (it hashed what it wrote before the object
   appeared), while the object is still the very file this process wrote
   (``ObjectInfo.written_here``): the checksum it recorded then.

When none of them can be had the object counts as unverified (``UnverifiableError``),
and whoever asked keeps the local copy.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from log_archiver.errors import (
    ArchiveError,
    ChecksumMismatchError,
    StorageNotFoundError,
    UnverifiableError,
)
from log_archiver.storage.base import ObjectInfo, Store
from log_archiver.util.hashing import bare

BLOCK = 1 << 20
Proof = Literal["server_sha256", "composite", "read_back", "checked_write"]


@dataclass(frozen=True)
class Verified:
    info: ObjectInfo  # what the store holds (``sha256`` the proved one)
    proof: Proof

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def sha256(self) -> str | None:
        return self.info.sha256


def verify(store: Store, key: str, *, sha256: str, size: int,
           local: Path | None = None) -> Verified:
    """Prove the object at ``key`` has ``size`` bytes with ``sha256``, or raise.

    ``local`` is a file believed to hold the same bytes (the one about to be deleted):
    it lets a multipart object be proved by its composite checksum instead of a download.
    """
    info = store.head(key)
    if info is None:
        raise StorageNotFoundError(
            f"stored object {store.url_for(key)} is missing",
            "run `retry-failed-uploads ISSUE --execute` to upload it again")
    if info.size != size:
        raise _mismatch(store, key, f"size {info.size}", f"size {size}")
    if info.sha256_by_server and info.sha256 is not None:
        if info.sha256 != sha256:
            raise _mismatch(store, key, f"sha256 {info.sha256} (the server's)",
                            f"sha256 {sha256}")
        return Verified(info, "server_sha256")
    if info.written_here and store.capabilities.checked_writes \
            and info.sha256 == sha256:
        return Verified(info, "checked_write")
    if info.composite is not None and local is not None \
            and _composite_matches(info.composite, local, sha256, size):
        return Verified(replace(info, sha256=sha256), "composite")
    try:
        read_size, read_sha256 = store.digest(key)
    except ChecksumMismatchError:
        raise
    except ArchiveError as error:
        if isinstance(error, StorageNotFoundError):
            raise
        raise UnverifiableError(
            f"stored object {store.url_for(key)} cannot be verified: the store gives no "
            f"SHA-256 of its own for it (a checksum "
            f"recorded by the writer proves nothing) and reading it back failed: "
            f"{error.message}",
            "the local copy is kept; fix read access to the store (or let it compute "
            "SHA-256 checksums) and run cleanup-local ISSUE again") from error
    if (read_size, read_sha256) != (size, sha256):
        raise _mismatch(store, key, f"size {read_size} sha256 {read_sha256} (read back)",
                        f"size {size} sha256 {sha256}")
    return Verified(replace(info, sha256=read_sha256), "read_back")


def verify_record(store: Store, record: dict, local: Path | None = None) -> Verified:
    """``verify`` the stored object of an index record."""
    return verify(store, record["remote_path"], sha256=bare(record["checksum"]),
                  size=record["size_bytes"], local=local)


def proven_head(store: Store, key: str) -> ObjectInfo | None:
    """``head``, with ``sha256`` replaced by the hash of the bytes read back unless the
    server computed it: what a rebuild of the index may record."""
    info = store.head(key)
    if info is None or info.sha256_by_server:
        return info
    size, sha256 = store.digest(key)
    return replace(info, size=size, sha256=sha256)


def _composite_matches(composite: tuple[str, int, int], local: Path, sha256: str,
                       size: int) -> bool:
    """Whether ``local`` holds ``sha256`` and, cut into parts as the object was, gives the
    server's checksum of part checksums."""
    value, count, part_size = composite
    if part_size <= 0 or -(-size // part_size) != count:
        return False
    whole, parts = hashlib.sha256(), []
    try:
        with open(local, "rb") as handle:
            while True:
                part, left = hashlib.sha256(), part_size
                while left and (block := handle.read(min(BLOCK, left))):
                    part.update(block)
                    whole.update(block)
                    left -= len(block)
                if left == part_size:
                    break
                parts.append(part.digest())
    except OSError:
        return False
    if whole.hexdigest() != sha256 or len(parts) != count:
        return False
    combined = hashlib.sha256(b"".join(parts)).digest()
    return base64.b64encode(combined).decode("ascii") == value


def _mismatch(store: Store, key: str, found: str, expected: str) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        f"stored object {store.url_for(key)} does not match: {found}, expected {expected}",
        "the local copy is kept; re-upload it with `log-archiver archive ISSUE --force`")
