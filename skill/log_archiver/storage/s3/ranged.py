"""Ranged reads of an S3 object: one ``GET`` with a ``Range`` header.

What comes back is checked for its length only (the server answers ``206`` with at most
the bytes asked for); its content is verified by the caller against a checksum it trusts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from log_archiver.errors import StorageTransientError
from log_archiver.storage.base import check_range
from log_archiver.storage.s3.errors import status_of

if TYPE_CHECKING:
    from log_archiver.storage.s3.store import S3Store


def get_range(store: S3Store, key: str, start: int, length: int) -> bytes:
    """``length`` bytes of ``key`` from ``start`` (fewer at the end, ``b""`` past it)."""
    check_range(start, length)
    full = store._key(key)
    if length == 0:
        return b""
    with store._errors("download", key):
        try:
            reply = store._client.get_object(Bucket=store.bucket, Key=full,
                                             Range=f"bytes={start}-{start + length - 1}")
        except Exception as error:
            if status_of(error) == 416:  # the range starts at or past the object's end
                return b""
            raise
        data = reply["Body"].read()
    if len(data) > length or len(data) != int(reply.get("ContentLength", len(data))):
        raise StorageTransientError(
            f"{store.url_for(key)} answered a {length}-byte range from offset {start} with "
            f"{len(data)} bytes", "read it again; if it keeps failing the server ignores ranges")
    return data
