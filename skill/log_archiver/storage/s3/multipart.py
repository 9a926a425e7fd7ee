"""Incomplete S3 multipart uploads: what a killed process or a dead server leaves.

An incomplete upload keeps its parts (and costs storage) until it is aborted; the abort
in :meth:`S3Store._upload` is best effort and never runs when the process is killed.
Two things clean up after it: a later successful upload of the same key aborts the
uploads of that key started before it, and ``cleanup-local --orphans`` aborts old ones
anywhere under the store's prefix. Whether an upload's writer is still running cannot be
known from S3, so only age (the server's ``Initiated`` time) decides there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from log_archiver.storage.base import AbandonedUpload
from log_archiver.storage.s3.errors import status_of


def incomplete_uploads(client: Any, bucket: str, prefix: str, url: str) -> list[AbandonedUpload]:
    """Every incomplete multipart upload under ``prefix``, with its start and part bytes."""
    full_prefix = f"{prefix}/" if prefix else ""
    found = []
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                    Prefix=full_prefix)
    for page in pages:
        for upload in page.get("Uploads", []):
            key, upload_id = upload["Key"], upload["UploadId"]
            started = upload.get("Initiated")
            found.append(AbandonedUpload(
                "multipart", f"{url}/{key[len(full_prefix):]}",
                started.timestamp() if started else None,
                _parts_size(client, bucket, key, upload_id), False, (key, upload_id)))
    return found


def _parts_size(client: Any, bucket: str, key: str, upload_id: str) -> int:
    pages = client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key,
                                                        UploadId=upload_id)
    return sum(int(part.get("Size", 0)) for page in pages for part in page.get("Parts", []))


def abort(client: Any, bucket: str, abandoned: AbandonedUpload) -> None:
    key, upload_id = abandoned.handle
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as error:
        if status_of(error) != 404:
            raise


def abort_earlier_uploads(client: Any, bucket: str, key: str, created: dict) -> None:
    """After ``key`` was stored by the multipart upload ``created`` (the reply that began
    it), abort the incomplete uploads of ``key`` begun before it: earlier attempts that
    were killed or cut off. Best effort: what stays is for ``cleanup-local --orphans``."""
    before = _server_time(created)
    try:
        reply = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
        for upload in reply.get("Uploads", []):
            started = upload.get("Initiated")
            if upload["Key"] == key and upload["UploadId"] != created["UploadId"] \
                    and started is not None and started < before:
                client.abort_multipart_upload(Bucket=bucket, Key=key,
                                              UploadId=upload["UploadId"])
    except Exception:  # noqa: BLE001, S110 - the object itself is stored and verified
        pass


def _server_time(reply: dict) -> datetime:
    """When the server answered ``reply`` (its Date header), on the server's own clock, so
    a client clock that is off cannot make a newer upload look older."""
    from email.utils import parsedate_to_datetime

    date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return datetime.now(UTC)
