"""The bytes of an S3 upload, and the checksums a reply carries.

:func:`upload` sends a file as one PUT or as a multipart upload (parts streamed from
disk, each with its SHA-256, the full digest in ``x-amz-meta-sha256``).
:func:`server_sha256` and :func:`sha256_of` tell apart the SHA-256 the server computed
from the one the writer recorded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from log_archiver.storage.s3.files import Slice, b64, hash_parts, open_local

if TYPE_CHECKING:
    from log_archiver.storage.s3.store import S3Store

MIB = 1 << 20
MAX_PARTS = 10_000
META_SHA256 = "sha256"  # sent as x-amz-meta-sha256
_HEX64 = re.compile(r"[0-9a-f]{64}")
_OTHER_CHECKSUMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1")


def upload(store: S3Store, full: str, path: Path, sha256: str, size: int, *,
           conditional: bool, metadata: Mapping[str, str] | None = None) -> None:
    """One PUT up to the multipart threshold, else a multipart upload of the file's
    windows (each part with its SHA-256), conditional on nothing being at the key."""
    condition = {"IfNoneMatch": "*"} if conditional else {}
    common = dict(Bucket=store.bucket, Key=full,
                  Metadata={**(metadata or {}), META_SHA256: sha256}, **store._acl)
    if size <= store.multipart_threshold:
        with open_local(path) as body:
            store._client.put_object(Body=body, ContentLength=size,
                                    ChecksumSHA256=b64(sha256), **common, **condition)
        return
    part = store.multipart_chunk
    while -(-size // part) > MAX_PARTS:
        part *= 2
    ranges = [(offset, min(part, size - offset)) for offset in range(0, size, part)]
    digests = hash_parts(path, ranges, sha256)  # before anything is sent
    created = store._client.create_multipart_upload(ChecksumAlgorithm="SHA256", **common)
    upload_id = created["UploadId"]
    try:
        parts = _upload_parts(store, full, upload_id, path, ranges, digests)
        store._client.complete_multipart_upload(
            Bucket=store.bucket, Key=full, UploadId=upload_id,
            MultipartUpload={"Parts": parts}, **condition)
    except BaseException:
        try:
            store._client.abort_multipart_upload(Bucket=store.bucket, Key=full,
                                                UploadId=upload_id)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    from log_archiver.storage.s3.multipart import abort_earlier_uploads

    abort_earlier_uploads(store._client, store.bucket, full, created)

def _upload_parts(store: S3Store, full: str, upload_id: str, path: Path,
                  ranges: list[tuple[int, int]], digests: list[str]) -> list[dict]:
    def send(number: int) -> dict:
        (offset, length), digest = ranges[number - 1], digests[number - 1]
        with open_local(path) as handle:  # streamed from disk, one part at a time
            reply = store._client.upload_part(
                Bucket=store.bucket, Key=full, UploadId=upload_id, PartNumber=number,
                Body=Slice(handle, offset, length), ContentLength=length,
                ChecksumSHA256=digest)
        return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": digest}

    workers = min(store.concurrency, len(ranges))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-part") as pool:
        futures = [pool.submit(send, n) for n in range(1, len(ranges) + 1)]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception():
                raise future.exception()
        return [future.result() for future in futures]


def server_sha256(reply: dict) -> str | None:
    """The full-object SHA-256 the server computed, when it gives one."""
    value = reply.get("ChecksumSHA256")
    if value and "-" not in value and reply.get("ChecksumType") != "COMPOSITE":
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        return raw.hex() if len(raw) == 32 else None
    return None


def sha256_of(reply: dict) -> str | None:
    """The SHA-256 the writer recorded in ``x-amz-meta-sha256``: it describes the object
    (a multipart object has no other), it proves nothing."""
    value = reply.get("ChecksumSHA256")
    if value and "-" not in value and reply.get("ChecksumType") != "COMPOSITE":
        return None  # a server checksum that does not decode: believe nothing
    if not value and any(reply.get(f"Checksum{name}") for name in _OTHER_CHECKSUMS):
        return None  # written by another tool: the metadata may describe older bytes
    meta = (reply.get("Metadata") or {}).get(META_SHA256, "").lower()
    return meta if _HEX64.fullmatch(meta) else None
