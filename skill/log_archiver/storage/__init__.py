"""Open a store from its URL: ``file:///path``, ``s3://bucket/prefix``, ``r2://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from .base import ObjectInfo, Store, verify

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["ObjectInfo", "Store", "open_store", "verify"]


def open_store(url: str, config: Config | None = None) -> Store:
    parts = urlsplit(url)
    public_base = config.public_base_url if config else None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise UsageError(f"storage URL {url!r} is not an absolute file:/// URL",
                             "use file:///absolute/path/to/store")
        from .local import LocalStore

        return LocalStore(Path(unquote(parts.path)), public_base)
    if parts.scheme in ("s3", "r2"):
        if not parts.netloc:
            raise UsageError(f"storage URL {url!r} names no bucket",
                             f"use {parts.scheme}://bucket/optional/prefix")
        from .s3 import S3Store

        return S3Store.from_url(url, config)
    raise UsageError(f"storage URL {url!r} has an unknown scheme {parts.scheme!r}",
                     "use file:///path, s3://bucket/prefix or r2://bucket/prefix")
