"""Open a store from its URL: ``file:///path``, ``s3://bucket/prefix``, ``r2://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from log_archiver.errors import UsageError
from log_archiver.storage.base import AbandonedUpload, ObjectInfo, Store, verify
from log_archiver.util.hashing import bare

if TYPE_CHECKING:
    from log_archiver.config import Config

__all__ = ["AbandonedUpload", "ObjectInfo", "Store", "at_timeout", "open_store", "read_timeout",
           "verify", "verify_record"]

DEFAULT_READ_TIMEOUT = 60.0


def read_timeout(store: Store) -> float:
    """The store's read timeout: where ``RetryPolicy.run`` starts (local stores have none)."""
    return float(getattr(store, "read_timeout", DEFAULT_READ_TIMEOUT))


def at_timeout(store: Store, seconds: float) -> Store:
    """The store with a longer read timeout for a retry after a timeout (if it has one)."""
    adjust = getattr(store, "with_timeout", None)
    return store if adjust is None else adjust(seconds)


def verify_record(store: Store, record: dict, policy) -> tuple[ObjectInfo, int]:
    """``verify`` the stored object of an index record, retried by ``policy`` (a timeout
    retried with a longer one); returns what the store holds and the retries it took."""
    sha256 = bare(record["checksum"])
    return policy.run(lambda timeout: verify(at_timeout(store, timeout), record["remote_path"],
                                             sha256=sha256, size=record["size_bytes"]),
                      base_timeout=read_timeout(store))


def open_store(url: str, config: Config | None = None) -> Store:
    parts = urlsplit(url)
    public_base = config.public_base_url if config else None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise UsageError(f"storage URL {url!r} is not an absolute file:/// URL",
                             "use file:///absolute/path/to/store")
        from log_archiver.storage.local import LocalStore

        return LocalStore(Path(unquote(parts.path)), public_base)
    if parts.scheme in ("s3", "r2"):
        if not parts.netloc:
            raise UsageError(f"storage URL {url!r} names no bucket",
                             f"use {parts.scheme}://bucket/optional/prefix")
        from log_archiver.storage.s3.store import S3Store

        return S3Store.from_url(url, config)
    raise UsageError(f"storage URL {url!r} has an unknown scheme {parts.scheme!r}",
                     "use file:///path, s3://bucket/prefix or r2://bucket/prefix")
