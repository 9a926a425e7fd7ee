"""Open a store from its URL: ``file:///path``, ``s3://bucket/prefix``, ``r2://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from log_archiver.errors import UsageError
from log_archiver.storage.base import AbandonedUpload, Capabilities, ObjectInfo, Store
from log_archiver.storage.verify import Verified, proven_head, verify, verify_record

if TYPE_CHECKING:
    from log_archiver.config import Config

__all__ = ["AbandonedUpload", "Capabilities", "ObjectInfo", "Store", "Verified",
           "check_store_url", "open_store", "proven_head", "verify", "verify_record"]

CREDENTIAL_HINT = ("remove the credentials from the URL and give them the standard AWS way: "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (s3.profile)")


def check_store_url(url: str) -> None:
    """Refuse a store URL that carries credentials (``s3://KEY:SECRET@bucket``), without
    ever repeating them: they would end up in the index, the issue comment and git."""
    scheme, _, rest = str(url).partition("://")
    # A secret may hold '/', so any '@' counts, except in the path of a file:/// URL
    # (a bucket or host name has none).
    local_path = scheme.lower() == "file" and rest.startswith(("/", "localhost/"))
    if "@" in rest and not local_path:
        shown = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        raise UsageError(f"storage URL {shown!r} carries credentials before '@' (not shown)",
                         CREDENTIAL_HINT)


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
