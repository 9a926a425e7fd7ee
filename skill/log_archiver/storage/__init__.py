"""Open a store from its URL: ``file:///path``, ``s3://bucket/prefix``, ``r2://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from log_archiver.errors import UsageError
from log_archiver.storage.base import AbandonedUpload, Capabilities, ObjectInfo, Store
from log_archiver.storage.verify import Verified, proven_head, verify, verify_record
from log_archiver.util.urls import check_store_url

if TYPE_CHECKING:
    from log_archiver.config import Config

__all__ = ["AbandonedUpload", "Capabilities", "ObjectInfo", "Store", "Verified",
           "check_store_url", "open_store", "proven_head", "verify", "verify_record"]

def open_store(url: str, config: Config | None = None) -> Store:
    check_store_url(url)
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
